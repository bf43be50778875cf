import { join } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import pg from "pg";
import { newSid } from "../../src/domain/ids.js";
import type { NotificationsTable, UsageCountersTable } from "../../src/store/schema.js";

/** Where a test server keeps its data: its PostgreSQL schema's URL, else the SQLite file in its data dir. */
export interface DataLocation {
  dataDir: string;
  databaseUrl: string | undefined;
}

type Tables = { notifications: NotificationsTable; usage_counters: UsageCountersTable };

/**
 * Writes rows straight into a running server's store, as another writer would: for rows the API reads
 * but that no request of the test can make (usage on days long past, a webhook's notification).
 */
export async function insertRows<T extends keyof Tables>(
  where: DataLocation,
  table: T,
  rows: ReadonlyArray<Tables[T]>,
): Promise<void> {
  if (rows.length === 0) return;
  const columns = Object.keys(rows[0] as object);
  const values = (row: Tables[T]) => columns.map((c) => (row as unknown as Record<string, unknown>)[c]);
  if (where.databaseUrl) {
    const client = new pg.Client({ connectionString: where.databaseUrl });
    await client.connect();
    try {
      const placeholders = columns.map((_, i) => `$${i + 1}`).join(", ");
      for (const row of rows) {
        await client.query(
          `insert into ${table} (${columns.join(", ")}) values (${placeholders})`,
          values(row),
        );
      }
    } finally {
      await client.end();
    }
    return;
  }
  const db = new BetterSqlite3(join(where.dataDir, "mailroom.db"));
  try {
    db.pragma("busy_timeout = 5000");
    const insert = db.prepare(
      `insert into ${table} (${columns.join(", ")}) values (${columns.map(() => "?").join(", ")})`,
    );
    db.transaction(() => {
      for (const row of rows) insert.run(...values(row));
    })();
  } finally {
    db.close();
  }
}

/** A notification row as the write path makes one: a failed message (log 0) unless overridden. */
export function notificationRow(
  accountSid: string,
  overrides: Partial<NotificationsTable> = {},
): NotificationsTable {
  return {
    sid: newSid("NO"),
    account_sid: accountSid,
    date_created: Date.now(),
    log: 0,
    error_code: 13101,
    message_text: "The relay refused the message: 550 5.1.1 no such user",
    message_sid: newSid("EM"),
    request_url: null,
    request_method: null,
    request_variables: null,
    response_headers: null,
    response_body: null,
    ...overrides,
  };
}
