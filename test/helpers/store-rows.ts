import { newSid } from "../../src/domain/ids.js";
import { type EmailContent, storeContent } from "../../src/model/email-message.js";
import type { AttemptRecord, MailStore, NewEmailMessage } from "../../src/store/types.js";

/** A fixed clock for store tests: every time is passed explicitly, so nothing depends on the wall clock. */
export const T0 = 1_700_000_000_000;

/** Inserts an active account straight into the store and returns its SID. */
export async function insertAccount(store: MailStore, email: string): Promise<string> {
  const sid = newSid("AC");
  await store.insertAccount({
    sid,
    parent_sid: null,
    email_address: email,
    friendly_name: email,
    type: "Full",
    status: "active",
    role: "Administrator",
    auth_token_hash: "not-a-real-hash",
    password_hash: null,
    date_created: T0,
    date_updated: T0,
  });
  return sid;
}

/** The content of the Restcomm documentation's example message. */
export function plainContent(overrides: Partial<EmailContent> = {}): EmailContent {
  return {
    from: { name: "Jane Doe", address: "jane.doe@example.org" },
    to: [{ name: "", address: "john.doe@example.com" }],
    cc: [],
    bcc: [],
    reply_to: [],
    subject: "Test Email",
    body: "This is a test",
    type: "text/plain; charset=UTF-8",
    html: null,
    text: null,
    headers: {},
    tags: {},
    attachments: [],
    ...overrides,
  };
}

/** The columns a message's content is stored in (see storeContent). */
export function storedColumns(content: EmailContent) {
  const stored = storeContent(content);
  return { content: stored.json, body_part: stored.body, html_part: stored.html, text_part: stored.text };
}

/** A queued message as the API would build it, created at T0 unless overridden. */
export function emailRow(accountSid: string, overrides: Partial<NewEmailMessage> = {}): NewEmailMessage {
  const sid = overrides.sid ?? newSid("EM");
  const at = overrides.date_created ?? T0;
  return {
    sid,
    account_sid: accountSid,
    from_address: "Jane Doe <jane.doe@example.org>",
    to_addresses: "john.doe@example.com",
    subject: "Test Email",
    ...storedColumns(plainContent()),
    status: "queued",
    message_id: `<${sid}@example.org>`,
    status_callback: null,
    error_code: null,
    error_message: null,
    date_created: at,
    date_updated: at,
    date_sent: at,
    date_delivered: null,
    send_at: null,
    ...overrides,
  };
}

/** Accepts `count` messages concurrently (so they share group commits) and returns their SIDs in order. */
export async function acceptMany(
  store: MailStore,
  accountSid: string,
  count: number,
  overrides: (i: number) => Partial<NewEmailMessage> = () => ({}),
): Promise<string[]> {
  const rows = Array.from({ length: count }, (_, i) => emailRow(accountSid, overrides(i)));
  await Promise.all(rows.map((row) => store.acceptEmail(row)));
  return rows.map((row) => row.sid);
}

/**
 * The record of a delivery attempt as the worker writes it: by default owner "w"'s first attempt at T0,
 * delivered. `overrides` change the record, `attempt` the attempt row.
 */
export function attemptRecord(
  accountSid: string,
  messageSid: string,
  overrides: Partial<AttemptRecord> = {},
  attempt: Partial<AttemptRecord["attempt"]> = {},
): AttemptRecord {
  return {
    owner: "w",
    status: "sent",
    errorCode: null,
    errorMessage: null,
    retryAt: null,
    dateDelivered: T0 + 5,
    ...overrides,
    attempt: {
      sid: newSid("EA"),
      message_sid: messageSid,
      account_sid: accountSid,
      attempt: 1,
      date_started: T0,
      date_finished: T0 + 5,
      outcome: "delivered",
      smtp_code: 250,
      response: "250 OK",
      error_code: null,
      error_message: null,
      recipients: null,
      ...attempt,
    },
  };
}
