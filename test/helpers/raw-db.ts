import { join } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { Kysely, PostgresDialect, SqliteDialect } from "kysely";
import pg from "pg";
import { newSid } from "../../src/domain/ids.js";
import type { Database } from "../../src/store/schema.js";
import type { EmailEventRow, WebhookDeliveryRow } from "../../src/store/types.js";

/**
 * A direct connection to a test server's database (its SQLite file, or its PostgreSQL schema), as an
 * operator's tool would have: to put rows in place that no API writes (events, delivery attempts)
 * and to read rows no API shows (the webhook queue). Times from PostgreSQL's bigint columns are
 * strings here: compare them with Number().
 */
export function openRawDb(server: { dataDir: string; databaseUrl: string | undefined }): Kysely<Database> {
  if (server.databaseUrl !== undefined) {
    return new Kysely<Database>({
      dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: server.databaseUrl, max: 2 }) }),
    });
  }
  // The server writes to the same file meanwhile: wait for its write lock rather than fail.
  const database = new BetterSqlite3(join(server.dataDir, "mailroom.db"), { timeout: 10_000 });
  return new Kysely<Database>({ dialect: new SqliteDialect({ database }) });
}

/** An event row as the write path stores it (email.accepted of `messageSid` at `at` unless overridden). */
export function eventRow(
  accountSid: string,
  messageSid: string,
  at: number,
  overrides: Partial<EmailEventRow> = {},
): EmailEventRow {
  return {
    sid: newSid("EV", at),
    account_sid: accountSid,
    message_sid: messageSid,
    type: "email.accepted",
    recipient: null,
    date_created: at,
    smtp_code: null,
    response: null,
    error_code: null,
    error_message: null,
    retry_at: null,
    ...overrides,
  };
}

/** A delivery attempt as the webhook sender logs it (delivered, 200, unless overridden). */
export function deliveryRow(
  event: EmailEventRow,
  webhookSid: string,
  at: number,
  overrides: Partial<WebhookDeliveryRow> = {},
): WebhookDeliveryRow {
  return {
    sid: newSid("DL", at),
    account_sid: event.account_sid,
    webhook_sid: webhookSid,
    event_sid: event.sid,
    event_type: event.type,
    message_sid: event.message_sid,
    attempt: 1,
    date_created: at,
    status_code: 200,
    latency_ms: 12,
    outcome: "delivered",
    error: null,
    response_body: "ok",
    ...overrides,
  };
}
