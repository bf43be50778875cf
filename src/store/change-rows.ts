import type { Insertable } from "kysely";
import type { RecipientOutcome } from "../delivery/transports/transport.js";
import { newOrderedSid, newSid } from "../domain/ids.js";
import type { EventType, UsageCategory } from "../events/types.js";
import type { EmailEventsTable, NotificationsTable } from "./schema.js";
import type { AttemptRecord, NewEmailMessage } from "./types.js";

/**
 * What a change of a message writes besides the message itself (issue 13): its events, a
 * Notification, a usage count. Derived here, in the store's thread, from what the accept or the
 * attempt record already carries, so that both stores' writers (sqlite-writes.ts, postgres-writes.ts)
 * write the same rows in the transaction of the change, and the main thread pays nothing for them.
 */
export type EventRow = Insertable<EmailEventsTable> & { type: EventType };
export type NotificationRow = Insertable<NotificationsTable>;

/** Notification levels, as Restcomm numbers them. */
export const LOG_ERROR = 0;
export const LOG_WARNING = 1;

export function acceptedEvent(message: NewEmailMessage): EventRow {
  return {
    sid: newOrderedSid("EV", message.date_created),
    account_sid: message.account_sid,
    message_sid: message.sid,
    type: "email.accepted",
    recipient: null,
    date_created: message.date_created,
  };
}

/**
 * The event an accept writes after `email.accepted` for a message with a SendAt: `email.scheduled`,
 * its retry_at when it is due (the time of its first attempt). Null for a message sent at once.
 */
export function scheduledAtAccept(message: NewEmailMessage): EventRow | null {
  if (message.send_at === null || message.send_at === undefined) return null;
  return scheduleEvent(message, "email.scheduled", message.date_created, message.send_at);
}

/** The events of a batch of accepts, in order (no array per message: this is the accept's hot path). */
export function acceptEvents(messages: readonly NewEmailMessage[]): EventRow[] {
  const events: EventRow[] = [];
  for (const message of messages) {
    events.push(acceptedEvent(message));
    const scheduled = scheduledAtAccept(message);
    if (scheduled) events.push(scheduled);
  }
  return events;
}

/** An event of scheduled send (src/store/schedule-queries.ts): scheduled (or moved) to `dueAt`, or canceled. */
export function scheduleEvent(
  message: Pick<NewEmailMessage, "sid" | "account_sid">,
  type: "email.scheduled" | "email.canceled",
  at: number,
  dueAt: number | null,
): EventRow {
  return {
    sid: newOrderedSid("EV", at),
    account_sid: message.account_sid,
    message_sid: message.sid,
    type,
    recipient: null,
    date_created: at,
    retry_at: dueAt,
  };
}

/** The rows an attempt writes when it settles its message (its owner still held the lease). */
export interface AttemptChanges {
  events: EventRow[];
  notification: NotificationRow | null;
  /** The usage a final status counts; null while the message stays queued. */
  usage: UsageCategory | null;
}

export function attemptChanges(record: AttemptRecord): AttemptChanges {
  const { attempt } = record;
  const at = attempt.date_finished;
  const final = record.retryAt === null;
  const failedMessage = record.status === "failed";
  const event = (type: EventType, recipient: RecipientOutcome | null): EventRow => {
    // A recipient's own failure is its reply; the attempt's explains the rest (a lost connection...).
    const failing = type !== "email.sent";
    return {
      sid: newOrderedSid("EV", at),
      account_sid: attempt.account_sid,
      message_sid: attempt.message_sid,
      type,
      recipient: recipient?.address ?? null,
      date_created: at,
      smtp_code: recipient?.smtp_code ?? attempt.smtp_code ?? null,
      response: recipient?.response ?? attempt.response ?? null,
      error_code: failing ? (attempt.error_code ?? record.errorCode) : null,
      error_message: failing ? (attempt.error_message ?? record.errorMessage) : null,
      retry_at: type === "email.deferred" ? record.retryAt : null,
    };
  };
  const recipients = parseRecipients(attempt.recipients);
  const events: EventRow[] = [];
  for (const recipient of recipients) {
    if (recipient.state === "accepted") events.push(event("email.sent", recipient));
    else if (recipient.state === "rejected") events.push(event("email.failed", recipient));
    else events.push(event(final ? "email.failed" : "email.deferred", recipient));
  }
  // Failed before any recipient was tried (nothing to say per recipient): one event for the message.
  if (recipients.length === 0 && failedMessage) events.push(event("email.failed", null));
  return {
    events,
    notification: notificationOf(record),
    usage: !final ? null : failedMessage ? "email-failed" : record.status === "sent" ? "email-sent" : null,
  };
}

/**
 * A failed message is an error (log 0) and a deferred attempt a warning (log 1), each with the code
 * and the words the message or the attempt carries (they say what happened and what to do).
 */
function notificationOf(record: AttemptRecord): NotificationRow | null {
  const { attempt } = record;
  const failed = record.status === "failed";
  const deferred = record.retryAt !== null;
  if (!failed && !deferred) return null;
  const code = failed ? record.errorCode : (attempt.error_code ?? record.errorCode);
  const text = failed ? record.errorMessage : (attempt.error_message ?? record.errorMessage);
  if (code === null || code === undefined) return null;
  return {
    sid: newSid("NO", attempt.date_finished),
    account_sid: attempt.account_sid,
    date_created: attempt.date_finished,
    log: failed ? LOG_ERROR : LOG_WARNING,
    error_code: code,
    message_text: text ?? "",
    message_sid: attempt.message_sid,
  };
}

function parseRecipients(json: string | null | undefined): RecipientOutcome[] {
  if (!json) return [];
  return JSON.parse(json) as RecipientOutcome[];
}

const DAY_MS = 86_400_000;
let memoDay = -1;
let memoText = "";

/** The UTC day of a time, yyyy-MM-dd (usage counters count per day). */
export function utcDay(ms: number): string {
  const day = Math.floor(ms / DAY_MS);
  if (day !== memoDay) {
    memoDay = day;
    memoText = new Date(day * DAY_MS).toISOString().slice(0, 10);
  }
  return memoText;
}

/** Usage to add, summed per (account, day, category) over a batch: one upsert per key, not per message. */
export class UsageTally {
  /**
   * By account, then a few entries (a day or two, a category or two). No composed string key: joining
   * the three and hashing the join cost more than the account's lookup and a short scan, where the
   * day (utcDay's one text) and the category (a literal) compare as the same strings.
   */
  private readonly counts = new Map<string, UsageRow[]>();

  add(account: string, at: number, category: UsageCategory): void {
    const day = utcDay(at);
    let entries = this.counts.get(account);
    if (entries === undefined) {
      entries = [];
      this.counts.set(account, entries);
    }
    for (const entry of entries) {
      if (entry.day === day && entry.category === category) {
        entry.count += 1;
        return;
      }
    }
    entries.push({ account, day, category, count: 1 });
  }

  /** In key order: writers that lock rows take the locks in one order (no deadlock between batches). */
  rows(): UsageRow[] {
    return [...this.counts.values()]
      .flat()
      .sort(
        (a, b) =>
          compareText(a.account, b.account) ||
          compareText(a.day, b.day) ||
          compareText(a.category, b.category),
      );
  }
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

interface UsageRow {
  account: string;
  day: string;
  category: UsageCategory;
  count: number;
}
