import { type Kysely, sql } from "kysely";
import { newSid } from "../domain/ids.js";
import { findInAccount } from "./account-rows.js";
import type { StoreDialect } from "./dialect.js";
import { datedPage } from "./paged.js";
import type { Database } from "./schema.js";
import type {
  EmailEventRow,
  EventFilter,
  NewWebhook,
  NewWebhookJob,
  Page,
  ReplayRange,
  WebhookDeliveryRow,
  WebhookPatch,
  WebhookRow,
} from "./types.js";

/**
 * The queries of the Webhooks, Events and Deliveries resources (issue 13), written once for both
 * databases. Store (store.ts) exposes them as MailStore methods; the lists run in SQLite's reader
 * thread (threaded-store.ts).
 */

/**
 * Inserts the webhook unless its account already has `limit` of them. The count and the insert run
 * in the account-tree transaction (StoreDialect.accountsTransaction): two creates racing for the
 * last place, in one process or two, take turns, and the second sees the first. Creates are rare.
 */
export function insertWebhook(
  db: Kysely<Database>,
  dialect: StoreDialect,
  webhook: NewWebhook,
  limit: number,
): Promise<boolean> {
  return dialect.accountsTransaction(db, async (trx) => {
    const row = await trx
      .selectFrom("webhooks")
      .select((eb) => eb.fn.countAll<number | string>().as("n"))
      .where("account_sid", "=", webhook.account_sid)
      .executeTakeFirstOrThrow();
    if (Number(row.n) >= limit) return false;
    await trx.insertInto("webhooks").values(webhook).execute();
    return true;
  });
}

export function findWebhook(
  db: Kysely<Database>,
  accountSid: string,
  sid: string,
): Promise<WebhookRow | undefined> {
  return findInAccount(db, "webhooks", accountSid, sid);
}

/** An account's webhooks, oldest first. */
export async function listWebhooks(
  db: Kysely<Database>,
  accountSid: string,
  offset: number,
  limit: number,
): Promise<Page<WebhookRow>> {
  return datedPage(db.selectFrom("webhooks").where("account_sid", "=", accountSid), "asc", offset, limit);
}

/**
 * Applies `patch` and returns the webhook as it is now; undefined if the account has no such webhook.
 * `reenable` turns the webhook on and, if it was off, forgets when it started failing (so the
 * disabling clock starts again); a webhook already on keeps its clock.
 */
export async function updateWebhook(
  db: Kysely<Database>,
  accountSid: string,
  sid: string,
  patch: WebhookPatch,
  reenable: boolean,
): Promise<WebhookRow | undefined> {
  const set = reenable
    ? {
        ...patch,
        enabled: 1,
        // Evaluated on the row before the update: only a disabled webhook's clock is reset.
        failing_since: sql<number | null>`case when enabled = 0 then null else failing_since end`,
      }
    : patch;
  const result = await db
    .updateTable("webhooks")
    .set(set)
    .where("sid", "=", sid)
    .where("account_sid", "=", accountSid)
    .executeTakeFirst();
  if (Number(result.numUpdatedRows) === 0) return undefined;
  return findWebhook(db, accountSid, sid);
}

/**
 * Deletes the webhook with its queued deliveries and its delivery log, in one transaction; false if
 * the account has no such webhook. A delivery in flight finds its job gone and records nothing.
 */
export function deleteWebhook(db: Kysely<Database>, accountSid: string, sid: string): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const result = await trx
      .deleteFrom("webhooks")
      .where("sid", "=", sid)
      .where("account_sid", "=", accountSid)
      .executeTakeFirst();
    if (Number(result.numDeletedRows) === 0) return false;
    await trx.deleteFrom("webhook_queue").where("webhook_sid", "=", sid).execute();
    await trx.deleteFrom("webhook_deliveries").where("webhook_sid", "=", sid).execute();
    return true;
  });
}

/**
 * Events of an account matching `filter`: newest first, or oldest first (`order: "asc"`, a message's
 * history). The account index (account, date_created, sid) serves both orders; with a message, the
 * message index (message_sid, sid) narrows it to that message's few rows.
 */
export async function listEvents(
  db: Kysely<Database>,
  filter: EventFilter,
  offset: number,
  limit: number,
  order: "asc" | "desc",
): Promise<Page<EmailEventRow>> {
  let matching = db.selectFrom("email_events").where("account_sid", "=", filter.accountSid);
  if (filter.messageSid !== undefined) matching = matching.where("message_sid", "=", filter.messageSid);
  if (filter.types !== undefined) matching = matching.where("type", "in", filter.types);
  if (filter.createdFrom !== undefined) matching = matching.where("date_created", ">=", filter.createdFrom);
  if (filter.createdBefore !== undefined)
    matching = matching.where("date_created", "<", filter.createdBefore);
  return datedPage(matching, order, offset, limit);
}

export function findEvent(
  db: Kysely<Database>,
  accountSid: string,
  sid: string,
): Promise<EmailEventRow | undefined> {
  return findInAccount(db, "email_events", accountSid, sid);
}

/** A webhook's delivery attempts, newest first (index webhook_deliveries_webhook). */
export async function listDeliveries(
  db: Kysely<Database>,
  accountSid: string,
  webhookSid: string,
  offset: number,
  limit: number,
): Promise<Page<WebhookDeliveryRow>> {
  const matching = db
    .selectFrom("webhook_deliveries")
    .where("webhook_sid", "=", webhookSid)
    .where("account_sid", "=", accountSid);
  return datedPage(matching, "desc", offset, limit);
}

export function findDelivery(
  db: Kysely<Database>,
  accountSid: string,
  webhookSid: string,
  sid: string,
): Promise<WebhookDeliveryRow | undefined> {
  return db
    .selectFrom("webhook_deliveries")
    .selectAll()
    .where("sid", "=", sid)
    .where("webhook_sid", "=", webhookSid)
    .where("account_sid", "=", accountSid)
    .executeTakeFirst();
}

/** Rows per INSERT: 9 columns each stays far below both databases' limits on bound values. */
const JOB_CHUNK = 500;

async function insertJobs(db: Kysely<Database>, jobs: readonly NewWebhookJob[]): Promise<void> {
  for (let i = 0; i < jobs.length; i += JOB_CHUNK) {
    await db
      .insertInto("webhook_queue")
      .values(jobs.slice(i, i + JOB_CHUNK))
      .execute();
  }
}

/** Queues these deliveries (replays), all or none. */
export async function enqueueWebhookJobs(
  db: Kysely<Database>,
  jobs: readonly NewWebhookJob[],
): Promise<void> {
  if (jobs.length === 0) return;
  await db.transaction().execute((trx) => insertJobs(trx, jobs));
}

/**
 * Queues every event of the range for the webhook, oldest first, in one transaction: all of them, or
 * none when there are more than `range.max` (the answer then says so, with max + 1 as the count).
 */
export function replayEventRange(
  db: Kysely<Database>,
  range: ReplayRange,
  now: number,
): Promise<{ queued: number } | { tooMany: true }> {
  return db.transaction().execute(async (trx) => {
    if (range.types.length === 0) return { queued: 0 };
    const events = await trx
      .selectFrom("email_events")
      .select(["sid", "message_sid"])
      .where("account_sid", "=", range.accountSid)
      .where("date_created", ">=", range.from)
      .where("date_created", "<", range.before)
      .where("type", "in", range.types)
      .orderBy("date_created")
      .orderBy("sid")
      .limit(range.max + 1)
      .execute();
    if (events.length > range.max) return { tooMany: true };
    // The worker claims jobs due at the same time in SID order: SIDs one millisecond apart keep the
    // events' order (a SID's time part is only its order here; nothing reads it as a date).
    const jobs: NewWebhookJob[] = events.map((event, i) => ({
      sid: newSid("RP", now + i),
      account_sid: range.accountSid,
      webhook_sid: range.webhookSid,
      event_sid: event.sid,
      message_sid: event.message_sid,
      callback_url: null,
      attempts: 0,
      created_at: now,
      due_at: now,
      lease_owner: null,
      lease_expires_at: null,
    }));
    await insertJobs(trx, jobs);
    return { queued: jobs.length };
  });
}

/**
 * The check value stored under `name`: `candidate` if there was none (this process is the first),
 * else the one already there, which the caller's key must open. Two processes starting at once both
 * read the one that won the insert.
 */
export async function claimSecretKeyCheck(
  db: Kysely<Database>,
  name: string,
  candidate: string,
  now: number,
): Promise<string> {
  await db
    .insertInto("secret_key_checks")
    .values({ name, sealed: candidate, date_created: now })
    .onConflict((oc) => oc.column("name").doNothing())
    .execute();
  const row = await db
    .selectFrom("secret_key_checks")
    .select("sealed")
    .where("name", "=", name)
    .executeTakeFirstOrThrow();
  return row.sealed;
}
