/**
 * The event types, as they appear on the wire (webhook bodies, the Events lists, a webhook's
 * `events`). Some are reserved for features still to come (scheduling, bounce processing): a webhook
 * may subscribe to them already.
 */
export const EVENT_TYPES = [
  "email.accepted",
  "email.scheduled",
  "email.canceled",
  "email.sent",
  "email.deferred",
  "email.failed",
  "email.bounced",
  "email.complained",
  "email.suppressed",
] as const;

export type EventType = (typeof EVENT_TYPES)[number];

export function isEventType(value: string): value is EventType {
  return (EVENT_TYPES as readonly string[]).includes(value);
}
