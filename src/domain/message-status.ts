/**
 * A message's life: `queued` (waiting, possibly for a retry) → `sending` (leased by a worker) →
 * `sent` (the relay or capture took it for at least one recipient; refused recipients are named in
 * error_code 13102) or `failed` (nobody got it: permanently refused, or retrying stopped).
 * Only `sent` and `failed` are final. Scheduled send (SendAt) adds `scheduled` (stored at acceptance;
 * read as `queued` once its time has come, `sending` once leased) and `canceled` (final: canceled
 * before any worker took it; see src/store/schedule-queries.ts).
 */
export const MESSAGE_STATUSES = ["queued", "sending", "sent", "failed", "scheduled", "canceled"] as const;
export type MessageStatus = (typeof MESSAGE_STATUSES)[number];

export function isMessageStatus(value: string): value is MessageStatus {
  return (MESSAGE_STATUSES as readonly string[]).includes(value);
}
