import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { Statement } from "better-sqlite3";
import { newOrderedSid } from "../src/domain/ids.js";
import { ATTEMPT_COLUMNS, columnValue, EVENT_COLUMNS, MESSAGE_COLUMNS } from "../src/store/schema.js";
import { insertAttemptRow, insertEventRow, insertMessageRow } from "../src/store/sqlite-rows.js";

/** A row with a distinct value in every column, so a list in the wrong order cannot pass. */
function everyColumn(columns: readonly { name: string }[]): Record<string, unknown> {
  return Object.fromEntries(columns.map((column, i) => [column.name, `${column.name}-${i}`]));
}

describe("the SQLite writer's row INSERTs (sqlite-rows.ts)", () => {
  const tables = [
    { name: "email_messages", columns: MESSAGE_COLUMNS, insert: insertMessageRow },
    { name: "email_attempts", columns: ATTEMPT_COLUMNS, insert: insertAttemptRow },
    { name: "email_events", columns: EVENT_COLUMNS, insert: insertEventRow },
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
