import type { AccountRow, EmailAttemptRow, EmailMessageView } from "../store/store.js";
import { iso8601, rfc2822 } from "./dates.js";
import type { Resource, Scalar } from "./representation.js";

export const API_VERSION = "2012-04-24";
export const API_BASE = `/restcomm/${API_VERSION}`;

export function accountUri(sid: string): string {
  return `${API_BASE}/Accounts/${sid}.json`;
}

export function emailMessagesPath(accountSid: string): string {
  return `${API_BASE}/Accounts/${accountSid}/Email/Messages`;
}

/** Restcomm's fields first, in Restcomm's order; Mailroom's additions after them. */
export function emailMessageResource(m: EmailMessageView): Resource {
  const path = `${emailMessagesPath(m.account_sid)}/${m.sid}`;
  return {
    element: "EmailMessage",
    fields: [
      ["date_sent", iso8601(m.date_sent)],
      ["account_sid", m.account_sid],
      ["from", m.from_address],
      ["to", m.to_addresses],
      ["body", m.body],
      ["subject", m.subject],
      ["sid", m.sid],
      ["status", m.status],
      ["cc", m.cc_addresses || null],
      ["bcc", m.bcc_addresses || null],
      ["type", m.type],
      ["message_id", m.message_id],
      ["num_attempts", m.num_attempts],
      ["error_code", m.error_code],
      ["error_message", m.error_message],
      ["status_callback", m.status_callback],
      ["date_created", rfc2822(m.date_created)],
      ["date_updated", rfc2822(m.date_updated)],
      ["date_delivered", m.date_delivered === null ? null : rfc2822(m.date_delivered)],
      [
        "next_attempt",
        m.status === "queued" && m.next_attempt_at !== null ? rfc2822(m.next_attempt_at) : null,
      ],
      ["api_version", API_VERSION],
      ["uri", `${path}.json`],
      ["subresource_uris", { attempts: `${path}/Attempts.json`, mime: `${path}/Mime` }],
    ],
  };
}

export function emailAttemptResource(a: EmailAttemptRow): Resource {
  return {
    element: "Attempt",
    fields: [
      ["sid", a.sid],
      ["message_sid", a.message_sid],
      ["account_sid", a.account_sid],
      ["attempt", a.attempt],
      ["outcome", a.outcome],
      ["smtp_code", a.smtp_code],
      ["response", a.response],
      ["error_code", a.error_code],
      ["error_message", a.error_message],
      ["recipients", parseRecipients(a.recipients)],
      ["date_started", rfc2822(a.date_started)],
      ["date_finished", rfc2822(a.date_finished)],
    ],
  };
}

/** `authToken` is present only right after it was issued: it is never stored in the clear. */
export function accountResource(a: AccountRow, authToken?: string): Resource {
  return {
    element: "Account",
    fields: [
      ["sid", a.sid],
      ["friendly_name", a.friendly_name],
      ["email_address", a.email_address],
      ["type", a.type],
      ["status", a.status],
      ["role", a.role],
      ["date_created", rfc2822(a.date_created)],
      ["date_updated", rfc2822(a.date_updated)],
      ["auth_token", authToken ?? null],
      ["uri", accountUri(a.sid)],
      [
        "subresource_uris",
        {
          email_messages: `${emailMessagesPath(a.sid)}.json`,
          accounts: `${API_BASE}/Accounts.json`,
        },
      ],
      // Mailroom's addition, after Restcomm's fields.
      ["parent_sid", a.parent_sid],
    ],
  };
}

/** The per-recipient results an attempt stored as JSON: address, state, smtp_code, response. */
function parseRecipients(json: string | null): ReadonlyArray<Readonly<Record<string, Scalar>>> | null {
  if (json === null) return null;
  const parsed: unknown = JSON.parse(json);
  return Array.isArray(parsed) ? (parsed as Array<Record<string, Scalar>>) : null;
}
