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

export function insertEventRow(statement: Statement, e: EventRow): RunResult {
  return statement.run(
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
