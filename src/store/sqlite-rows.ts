import type { Insertable } from "kysely";
import type { EventRow } from "./change-rows.js";
import type { EmailAttemptsTable, EmailMessagesTable } from "./schema.js";

/**
 * The rows every plain message writes on SQLite, as the positional parameters of the INSERTs in
 * sqlite-writes.ts: each list is in its table's *_COLUMNS order (schema.ts), with what a row leaves
 * out written as the column's default or null (columnValue). Spelled out rather than mapped over the
 * column list: `COLUMNS.map(...)` made an array, a closure and a property look-up by name per column
 * (one V8 cannot specialise), about seven times the cost of these literals per row. The store tests
 * check each list against its columns (test/sqlite-rows.test.ts), so a column added there and not
 * here fails them.
 */
export function messageValues(m: Insertable<EmailMessagesTable>): unknown[] {
  return [
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
  ];
}

export function attemptValues(a: Insertable<EmailAttemptsTable>): unknown[] {
  return [
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
  ];
}

export function eventValues(e: EventRow): unknown[] {
  return [
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
  ];
}
