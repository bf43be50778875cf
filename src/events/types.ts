/**
 * The event types, exactly as they go on the wire (webhook bodies, the Events lists, webhook
 * subscriptions). bounced, complained and suppressed are reserved for bounce processing: nothing
 * writes them yet, but a webhook may already subscribe to them.
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
  /** An erasure replaced an address of the message with its hash and purged its content (issue 16). */
  "email.erased",
] as const;

export type EventType = (typeof EVENT_TYPES)[number];

export function isEventType(value: string): value is EventType {
  return (EVENT_TYPES as readonly string[]).includes(value);
}

/** Usage Records categories for email, as Restcomm clients see them. */
export const USAGE_CATEGORIES = ["email", "email-sent", "email-failed", "email-bounced"] as const;

export type UsageCategory = (typeof USAGE_CATEGORIES)[number];
