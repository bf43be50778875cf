import type { RunResult, Statement } from "better-sqlite3";
import type { Insertable } from "kysely";
import type { EventRow } from "./change-rows.js";
import type { EmailAttemptsTable, EmailMessagesTable } from "./schema.js";

/**
 * The rows every plain message writes on SQLite, run as the INSERTs of sqlite-writes.ts with one
 * argument per column, in its table's *_COLUMNS order (schema.ts); what a row leaves out is written
 * as the column's default or null (columnValue). Spelled out, for two costs per column that the
 * shorter `statement.run(COLUMNS.map((c) => columnValue(row, c)))` paid: the map's closure call and
 * property look-up by name (one V8 cannot specialise), and better-sqlite3 reading an array's elements
 * through V8's API (about 420 instructions each under callgrind, against next to nothing for an
 * argument; docs/performance.md, tenth round). The store tests check each against its columns
 * (test/sqlite-rows.test.ts), so a column added there and not here fails them.
 */
export function insertMessageRow(statement: Statement, m: Insertable<EmailMessagesTable>): RunResult {
  return statement.run(
    m.sid ?? null,
    m.account_sid ?? null,
    m.from_address ?? null,
    m.to_addresses ?? null,
    m.subject ?? null,
    m.content ?? null,
    m.body_part ?? null,
    m.html_part ?? null,
    m.text_part ?? null,
    m.status ?? null,
    m.message_id ?? null,
    m.status_callback ?? null,
    m.error_code ?? null,
    m.error_message ?? null,
    m.num_attempts ?? 0,
    m.date_created ?? null,
    m.date_updated ?? null,
    m.date_sent ?? null,
    m.date_delivered ?? null,
    m.send_at ?? null,
  );
}

export function insertAttemptRow(statement: Statement, a: Insertable<EmailAttemptsTable>): RunResult {
  return statement.run(
    a.sid ?? null,
    a.message_sid ?? null,
    a.account_sid ?? null,
    a.attempt ?? null,
    a.date_started ?? null,
    a.date_finished ?? null,
    a.outcome ?? null,
    a.smtp_code ?? null,
    a.response ?? null,
    a.error_code ?? null,
    a.error_message ?? null,
    a.recipients ?? null,
  );
}

/**
 * Rows of one table written together at the end of the group commit's transaction, by INSERTs of up
 * to ROWS_PER_INSERT rows each (one prepared statement per row count, made on first use). A plain
 * message writes two events; one statement per event paid SQLite's per-statement work each time
 * (opening and closing cursors on the table and its three indexes, resetting the program) and
 * better-sqlite3's result object: 13,600 fewer SQLite instructions per plain message under callgrind
 * (docs/performance.md, eleventh round).
 *
 * `or fail`, not the default `or abort`: an aborting statement of several rows needs a statement
 * journal (the pages it changed, to undo it alone), and past 64 KiB SQLite spills that to a temporary
 * file (with the events and attempts so written: 11 KB more written per message). A failing statement
 * fails the whole batch either way (its transaction, or its savepoint, is rolled back). Only for tables without foreign keys: a checked
 * foreign key in a statement of several rows needs that journal again (email_attempts: 2 KB more per
 * message, so its rows stay one statement each).
 */
export class RowInserts<Row> {
  private readonly byCount = new Map<number, Statement>();

  constructor(
    private readonly prepare: (sql: string) => Statement,
    private readonly table: string,
    private readonly columns: readonly { name: string }[],
    /** Appends a row's values in `columns` order (spelled out: see insertMessageRow). */
    private readonly push: (args: unknown[], row: Row) => void,
  ) {}

  run(rows: readonly Row[]): void {
    for (let start = 0; start < rows.length; start += ROWS_PER_INSERT) {
      const end = Math.min(rows.length, start + ROWS_PER_INSERT);
      const args: unknown[] = [];
      for (let i = start; i < end; i++) this.push(args, rows[i] as Row);
      this.statement(end - start).run(...args);
    }
  }

  private statement(rows: number): Statement {
    let statement = this.byCount.get(rows);
    if (statement === undefined) {
      const row = `(${this.columns.map(() => "?").join(", ")})`;
      const names = this.columns.map((column) => column.name).join(", ");
      statement = this.prepare(
        `insert or fail into ${this.table} (${names}) values ${Array(rows).fill(row).join(", ")}`,
      );
      this.byCount.set(rows, statement);
    }
    return statement;
  }
}

/** Rows per multi-row INSERT: 32 rows of 11 parameters stay far below SQLite's limit on them (32,766). */
export const ROWS_PER_INSERT = 32;

/** An event's values in EVENT_COLUMNS order, appended to `args`. */
export function pushEventRow(args: unknown[], e: EventRow): void {
  args.push(
    e.sid ?? null,
    e.account_sid ?? null,
    e.message_sid ?? null,
    e.type ?? null,
    e.recipient ?? null,
    e.date_created ?? null,
    e.smtp_code ?? null,
    e.response ?? null,
    e.error_code ?? null,
    e.error_message ?? null,
    e.retry_at ?? null,
  );
}
