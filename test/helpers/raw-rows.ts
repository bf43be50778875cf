import { newSid } from "../../src/domain/ids.js";
import type { NotificationsTable, UsageCountersTable } from "../../src/store/schema.js";
import { rawQuery } from "./raw-sql.js";

/** Where a test server keeps its data: its PostgreSQL schema's URL, else the SQLite file in its data dir. */
export interface DataLocation {
  dataDir: string;
  databaseUrl: string | undefined;
}

type Tables = { notifications: NotificationsTable; usage_counters: UsageCountersTable };

/**
 * Writes rows straight into a running server's store, as another writer would (rawQuery): for rows the
 * API reads but that no request of the test can make (usage on days long past, a webhook's notification).
 */
export async function insertRows<T extends keyof Tables>(
  where: DataLocation,
  table: T,
  rows: ReadonlyArray<Tables[T]>,
): Promise<void> {
  const location = { ...where, databasePoolSize: 1 };
  for (const row of rows) {
    const entries = Object.entries(row as object);
    await rawQuery(
      location,
      `insert into ${table} (${entries.map(([column]) => column).join(", ")}) values (${entries.map(() => "?").join(", ")})`,
      entries.map(([, value]) => value),
    );
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
