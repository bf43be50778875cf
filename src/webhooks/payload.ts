import type { WebhookJob } from "../store/types.js";

type EventRow = NonNullable<WebhookJob["event"]>;
type MessageRow = NonNullable<WebhookJob["message"]>;

/**
 * A webhook's body for one event, as the Standard Webhooks specification shapes it:
 * `{"type", "timestamp", "data"}`. `data` names the message and account, the recipient where the
 * event concerns one, and the SMTP reply, error and retry time where the event has them. The same
 * event always gives the same body, so a retry or a replay carries the same bytes and the same
 * `webhook-id` (the event SID) for receivers to recognise it.
 */
export function eventBody(event: EventRow): string {
  const data: Record<string, string | number> = {
    event_sid: event.sid,
    message_sid: event.message_sid,
    account_sid: event.account_sid,
  };
  if (event.recipient !== null) data.recipient = event.recipient;
  if (event.smtp_code !== null) data.smtp_code = event.smtp_code;
  if (event.response !== null) data.response = event.response;
  if (event.error_code !== null) data.error_code = event.error_code;
  if (event.error_message !== null) data.error_message = event.error_message;
  if (event.retry_at !== null) data.retry_at = new Date(event.retry_at).toISOString();
  return JSON.stringify({ type: event.type, timestamp: new Date(event.date_created).toISOString(), data });
}

/**
 * A StatusCallback's form: the fields a Restcomm (or Twilio) status callback carries, as Mailroom
 * POSTed them before callbacks were queued.
 */
export function statusCallbackForm(message: MessageRow): string {
  const form = new URLSearchParams({
    MessageSid: message.sid,
    AccountSid: message.account_sid,
    MessageStatus: message.status,
    To: message.to_addresses,
    From: message.from_address,
  });
  if (message.error_code !== null) form.set("ErrorCode", String(message.error_code));
  if (message.error_message !== null) form.set("ErrorMessage", message.error_message);
  return form.toString();
}
