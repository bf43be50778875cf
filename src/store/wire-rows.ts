import type { AttemptRecord, NewEmailMessage } from "./types.js";

/**
 * A plain message's accept and its attempt record as they cross to the store thread (threaded-store.ts,
 * store-thread.ts): arrays of their fields rather than objects. V8's deserializer builds an object
 * property by property (each key read, internalised and added through a map transition: about 1,000
 * instructions a property under callgrind, 48,000 per plain message in the store thread), while an
 * array's elements are just values; the object is then made again in the store thread by a literal,
 * which costs next to nothing. test/wire-rows.test.ts checks that each field comes back.
 */
export type PackedMessage = unknown[];
export type PackedAttemptRecord = unknown[];

/** The columns the store writes (MESSAGE_COLUMNS); `content_purged_at` is never set at accept. */
export function packMessage(m: NewEmailMessage): PackedMessage {
  return [
    m.sid,
    m.account_sid,
    m.from_address,
    m.to_addresses,
    m.subject,
    m.content,
    m.body_part,
    m.html_part,
    m.text_part,
    m.status,
    m.message_id,
    m.status_callback,
    m.error_code,
    m.error_message,
    m.num_attempts,
    m.date_created,
    m.date_updated,
    m.date_sent,
    m.date_delivered,
    m.send_at,
  ];
}

export function unpackMessage(p: PackedMessage): NewEmailMessage {
  return {
    sid: p[0] as string,
    account_sid: p[1] as string,
    from_address: p[2] as string,
    to_addresses: p[3] as string,
    subject: p[4] as string,
    content: p[5] as string,
    body_part: p[6] as string | null | undefined,
    html_part: p[7] as string | null | undefined,
    text_part: p[8] as string | null | undefined,
    status: p[9] as string,
    message_id: p[10] as string,
    status_callback: p[11] as string | null | undefined,
    error_code: p[12] as number | null | undefined,
    error_message: p[13] as string | null | undefined,
    num_attempts: p[14] as number | undefined,
    date_created: p[15] as number,
    date_updated: p[16] as number,
    date_sent: p[17] as number,
    date_delivered: p[18] as number | null | undefined,
    send_at: p[19] as number | null | undefined,
  };
}

export function packAttemptRecord(r: AttemptRecord): PackedAttemptRecord {
  const a = r.attempt;
  return [
    r.owner,
    r.hasStatusCallback,
    r.mime,
    r.status,
    r.errorCode,
    r.errorMessage,
    r.retryAt,
    r.dateDelivered,
    a.sid,
    a.message_sid,
    a.account_sid,
    a.attempt,
    a.date_started,
    a.date_finished,
    a.outcome,
    a.smtp_code,
    a.response,
    a.error_code,
    a.error_message,
    a.recipients,
  ];
}

export function unpackAttemptRecord(p: PackedAttemptRecord): AttemptRecord {
  return {
    owner: p[0] as string,
    hasStatusCallback: p[1] as boolean | undefined,
    mime: p[2] as string | undefined,
    status: p[3] as string,
    errorCode: p[4] as number | null,
    errorMessage: p[5] as string | null,
    retryAt: p[6] as number | null,
    dateDelivered: p[7] as number | null,
    attempt: {
      sid: p[8] as string,
      message_sid: p[9] as string,
      account_sid: p[10] as string,
      attempt: p[11] as number,
      date_started: p[12] as number,
      date_finished: p[13] as number,
      outcome: p[14] as string,
      smtp_code: p[15] as number | null | undefined,
      response: p[16] as string | null | undefined,
      error_code: p[17] as number | null | undefined,
      error_message: p[18] as string | null | undefined,
      recipients: p[19] as string | null | undefined,
    },
  };
}
