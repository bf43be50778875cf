import type { Kysely } from "kysely";
import type { EventType } from "../events/types.js";
import { type EventRow, scheduleEvent } from "./change-rows.js";
import type { Database } from "./schema.js";

/**
 * Cancel and reschedule (issue 14): changes to a message that no worker holds, each one transaction
 * with its event and webhook jobs. The queue row is the guard: it is deleted (cancel) or moved
 * (reschedule) only while unleased, and the message changes only if it was. On PostgreSQL a claim
 * locks the rows it leases (FOR UPDATE SKIP LOCKED): a claim that got there first makes the delete
 * wait for it and then find the row leased (0 rows, the message untouched); one that comes after
 * skips the locked row or finds it gone. So a message is either canceled or delivered, never both.
 */

/** What a change queued for the webhook sender (it is told: MailStore.listenWebhookJobs). */
export interface QueuedJobs {
  webhookSids: string[];
  callbacks: boolean;
}

/** A change that was made (with the jobs it queued), or undefined when the guard refused it. */
export type ScheduleChange = QueuedJobs | undefined;

/**
 * Cancels a message whose queue row is unleased (scheduled, or queued and not claimed): the row is
 * deleted and the message becomes `canceled` (final), with an `email.canceled` event and, as for
 * every final status, its StatusCallback.
 */
export function cancelUnleased(db: Kysely<Database>, sid: string, now: number): Promise<ScheduleChange> {
  return db.transaction().execute(async (trx) => {
    const gone = await trx
      .deleteFrom("delivery_queue")
      .where("message_sid", "=", sid)
      .where("lease_owner", "is", null)
      .executeTakeFirst();
    if (Number(gone.numDeletedRows) === 0) return undefined;
    const message = await trx
      .updateTable("email_messages")
      .set({ status: "canceled", date_updated: now })
      .where("sid", "=", sid)
      .returning(["sid", "account_sid", "status_callback"])
      .executeTakeFirstOrThrow();
    const webhookSids = await recordEvent(trx, scheduleEvent(message, "email.canceled", now, null));
    let callbacks = false;
    if (message.status_callback !== null) {
      // The same job a final attempt queues (sid + "CB"): a message has one final status, one callback.
      const queued = await trx
        .insertInto("webhook_queue")
        .values({
          sid: `${sid}CB`,
          account_sid: message.account_sid,
          message_sid: sid,
          callback_url: message.status_callback,
          created_at: now,
          due_at: now,
        })
        .onConflict((oc) => oc.column("sid").doNothing())
        .executeTakeFirst();
      callbacks = Number(queued.numInsertedOrUpdatedRows ?? 0) > 0;
    }
    return { webhookSids, callbacks };
  });
}

/**
 * Moves a scheduled message (stored `scheduled`, queue row unleased) to `sendAt`: its queue row is
 * due then, its send_at says so, and an `email.scheduled` event carries the new time.
 */
export function rescheduleUnleased(
  db: Kysely<Database>,
  sid: string,
  sendAt: number,
  now: number,
): Promise<ScheduleChange> {
  return db.transaction().execute(async (trx) => {
    const moved = await trx
      .updateTable("delivery_queue")
      .set({ due_at: sendAt })
      .where("message_sid", "=", sid)
      .where("lease_owner", "is", null)
      .where("message_sid", "in", (eb) =>
        eb
          .selectFrom("email_messages")
          .select("sid")
          .where("sid", "=", sid)
          .where("status", "=", "scheduled"),
      )
      .executeTakeFirst();
    if (Number(moved.numUpdatedRows) === 0) return undefined;
    const message = await trx
      .updateTable("email_messages")
      .set({ send_at: sendAt, date_updated: now })
      .where("sid", "=", sid)
      .returning(["sid", "account_sid"])
      .executeTakeFirstOrThrow();
    const webhookSids = await recordEvent(trx, scheduleEvent(message, "email.scheduled", now, sendAt));
    return { webhookSids, callbacks: false };
  });
}

/**
 * Inserts the event and a job for each enabled webhook of its account that wants its type (as the
 * group commit's writers do); returns the SIDs of those webhooks.
 */
async function recordEvent(trx: Kysely<Database>, event: EventRow & { type: EventType }): Promise<string[]> {
  await trx.insertInto("email_events").values(event).execute();
  const hooks = await trx
    .selectFrom("webhooks")
    .select(["sid", "events"])
    .where("account_sid", "=", event.account_sid)
    .where("enabled", "=", 1)
    .orderBy("sid")
    .execute();
  const wanting = hooks.filter((w) => w.events === null || `,${w.events},`.includes(`,${event.type},`));
  if (wanting.length > 0) {
    await trx
      .insertInto("webhook_queue")
      .values(
        wanting.map((w) => ({
          sid: `${event.sid}${w.sid}`,
          account_sid: event.account_sid,
          webhook_sid: w.sid,
          event_sid: event.sid,
          message_sid: event.message_sid,
          created_at: event.date_created,
          due_at: event.date_created,
        })),
      )
      .execute();
  }
  return wanting.map((w) => w.sid);
}
