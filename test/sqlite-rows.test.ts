import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { Statement } from "better-sqlite3";
import { newOrderedSid } from "../src/domain/ids.js";
import { ATTEMPT_COLUMNS, columnValue, EVENT_COLUMNS, MESSAGE_COLUMNS } from "../src/store/schema.js";
import {
  insertAttemptRow,
  insertMessageRow,
  pushEventRow,
  ROWS_PER_INSERT,
  RowInserts,
} from "../src/store/sqlite-rows.js";

/** A row with a distinct value in every column, so a list in the wrong order cannot pass. */
function everyColumn(columns: readonly { name: string }[]): Record<string, unknown> {
  return Object.fromEntries(columns.map((column, i) => [column.name, `${column.name}-${i}`]));
}

/** A row pusher as a one-row INSERT, so that the same checks cover both forms. */
function asInsert<Row>(push: (args: unknown[], row: Row) => void) {
  return (statement: Statement, row: Row) => {
    const args: unknown[] = [];
    push(args, row);
    return statement.run(...args);
  };
}

describe("the SQLite writer's row INSERTs (sqlite-rows.ts)", () => {
  const tables = [
    { name: "email_messages", columns: MESSAGE_COLUMNS, insert: insertMessageRow },
    { name: "email_attempts", columns: ATTEMPT_COLUMNS, insert: insertAttemptRow },
    { name: "email_events", columns: EVENT_COLUMNS, insert: asInsert(pushEventRow) },
  ] as const;
  // A statement that answers with the arguments it was run with.
  const echo = { run: (...args: unknown[]) => args } as unknown as Statement;
  for (const { name, columns, insert } of tables) {
    const bind = (row: Record<string, unknown>) =>
      (insert as (statement: Statement, row: Record<string, unknown>) => unknown)(echo, row);
    test(`${name}: every column, in the columns' order`, () => {
      const row = everyColumn(columns);
      assert.deepEqual(
        bind(row),
        columns.map((column) => columnValue(row, column)),
      );
    });
    test(`${name}: a column left out is its default or null`, () => {
      assert.deepEqual(
        bind({}),
        columns.map((column) => columnValue({}, column)),
      );
    });
  }
});

describe("RowInserts: multi-row INSERTs", () => {
  test("every row's values in order, in statements of at most ROWS_PER_INSERT rows", () => {
    const prepared: string[] = [];
    const runs: { sql: string; args: unknown[] }[] = [];
    const prepare = (sql: string) => {
      prepared.push(sql);
      return { run: (...args: unknown[]) => runs.push({ sql, args }) } as unknown as Statement;
    };
    const inserts = new RowInserts(prepare, "email_events", EVENT_COLUMNS, pushEventRow);
    const rows = Array.from({ length: ROWS_PER_INSERT + 3 }, (_, i) => ({
      ...everyColumn(EVENT_COLUMNS),
      sid: `EV${i}`,
    })) as unknown as Parameters<typeof pushEventRow>[1][];
    inserts.run(rows);
    inserts.run(rows.slice(0, 3));
    inserts.run([]);
    // One statement per row count, reused.
    assert.equal(prepared.length, 2);
    assert.deepEqual(
      runs.map((run) => run.args.length / EVENT_COLUMNS.length),
      [ROWS_PER_INSERT, 3, 3],
    );
    assert.equal(runs[1]?.sql, runs[2]?.sql);
    assert.match(
      runs[1]?.sql ?? "",
      /^insert or fail into email_events \(sid, account_sid, .*\) values \(\?(, \?){10}\)(, \(\?(, \?){10}\)){2}$/,
    );
    assert.deepEqual(
      runs.slice(0, 2).flatMap((run) => run.args),
      rows.flatMap((row) => EVENT_COLUMNS.map((column) => columnValue(row, column))),
    );
  });
});

describe("newOrderedSid", () => {
  test("strictly increasing, time first, in one millisecond and when the clock steps back", () => {
    const at = 1_700_000_000_000;
    const sids: string[] = [];
    // Enough SIDs in one millisecond that the low part carries over at least once.
    for (let i = 0; i < 70_000; i++) sids.push(newOrderedSid("EV", at));
    sids.push(newOrderedSid("NO", at - 5));
    sids.push(newOrderedSid("EV", at + 1));
    for (let i = 1; i < sids.length; i++) {
      const [before, after] = [sids[i - 1] as string, sids[i] as string];
      assert.match(after, /^[A-Z]{2}[0-9a-f]{32}$/);
      assert.ok(after.slice(2) > before.slice(2), `${after} after ${before}`);
    }
    assert.equal(sids[0]?.slice(2, 14), at.toString(16).padStart(12, "0"));
    assert.equal(sids.at(-1)?.slice(2, 14), (at + 1).toString(16).padStart(12, "0"));
  });
});
