import { type Insertable, type Kysely, type RawBuilder, type Selectable, sql } from "kysely";
import { WebhookErrorCodes } from "../domain/errors.js";
import { newSid } from "../domain/ids.js";
import type { StoreDialect } from "./dialect.js";
import type {
  Database,
  EmailEventsTable,
  EmailMessagesTable,
  NotificationsTable,
  WebhookDeliveriesTable,
} from "./schema.js";

/**
 * The webhook sender's queries (src/webhooks/worker.ts): claiming jobs of webhook_queue with what
 * sending them needs, and recording each attempt with the job's fate, the webhook's failing state and
 * the Notifications, in one transaction. The leases are delivery_queue's mechanism (StoreDialect.claimDue).
 */

/** A claimed job of webhook_queue, with what sending it needs. */
export interface WebhookJob {
  sid: string;
  account_sid: string;
  /** Null: a message's StatusCallback (callback_url). */
  webhook_sid: string | null;
  event_sid: string | null;
  message_sid: string | null;
  callback_url: string | null;
  /** Attempts made before this one. */
  attempts: number;
  created_at: number;
  due_at: number;
  /** A webhook job's webhook. */
  webhook: { url: string; secret_sealed: string; failing_since: number | null } | null;
  /** A webhook job's event. */
  event: Selectable<EmailEventsTable> | null;
  /** A StatusCallback job's message (at its final status). */
  message: Pick<
    Selectable<EmailMessagesTable>,
    "sid" | "account_sid" | "status" | "to_addresses" | "from_address" | "error_code" | "error_message"
  > | null;
}

/** What one attempt to send a job concluded, and what to write about it. */
export interface WebhookAttemptRecord {
  /** The lease holder that made the attempt: only while it still holds the job is the job changed. */
  owner: string;
  job: Pick<WebhookJob, "sid" | "account_sid" | "webhook_sid" | "message_sid">;
  now: number;
  /** delivered: the job is deleted; retrying: rescheduled at retryAt; failed: given up (deleted). */
  outcome: "delivered" | "retrying" | "failed";
  retryAt: number | null;
  /** The Deliveries row (webhook jobs only: StatusCallbacks are not logged there). */
  delivery: Insertable<WebhookDeliveriesTable> | null;
  /** A failed attempt, as the Notifications about it show it. */
  failure: {
    /** request_url: the URL without its query (which may carry a token). */
    requestUrl: string;
    responseBody: string | null;
    /** The notification texts, by what happened (written only when it did). */
    startedFailing: string;
    disabled: string;
    givenUp: string;
  } | null;
  /** A failing webhook whose failing_since is at or before this is disabled. */
  disableIfFailingSince: number | null;
}

export interface WebhookAttemptResult {
  /** False when the job was no longer leased to the owner: only the Deliveries row was written. */
  held: boolean;
  /** This failure was the webhook's first since a success (a Notification, log 1, was written). */
  startedFailing: boolean;
  /** The webhook was disabled (Notification, log 0) and `dropped` of its queued jobs removed. */
  disabled: boolean;
  dropped: number;
}

export interface ClaimOptions {
  owner: string;
  now: number;
  leaseMs: number;
  limit: number;
  silentBefore: number | null;
  /** Targets to leave alone this time: the sender has as many of their jobs in hand as it takes. */
  skip?: WebhookTargets | undefined;
}

/** Where jobs go: webhooks by SID, StatusCallbacks by URL. */
export interface WebhookTargets {
  webhookSids: string[];
  callbackUrls: string[];
}

export async function claimWebhookJobs(
  db: Kysely<Database>,
  dialect: StoreDialect,
  options: ClaimOptions,
): Promise<WebhookJob[]> {
  const { owner, now, leaseMs, limit, silentBefore, skip } = options;
  const sids = await dialect.claimDue(
    db,
    "webhook_queue",
    owner,
    now,
    leaseMs,
    limit,
    silentBefore,
    skip ? skipFilter(skip) : undefined,
  );
  if (sids.length === 0) return [];
  const rows = await db
    .selectFrom("webhook_queue as q")
    .leftJoin("webhooks as w", "w.sid", "q.webhook_sid")
    .leftJoin("email_events as e", "e.sid", "q.event_sid")
    // Only a StatusCallback needs its message: its form carries the message's fields.
    .leftJoin("email_messages as m", (join) =>
      join.onRef("m.sid", "=", "q.message_sid").on("q.webhook_sid", "is", null),
    )
    .select([
      "q.sid",
      "q.account_sid",
      "q.webhook_sid",
      "q.event_sid",
      "q.message_sid",
      "q.callback_url",
      "q.attempts",
      "q.created_at",
      "q.due_at",
      "w.sid as w_sid",
      "w.url as w_url",
      "w.secret_sealed as w_secret_sealed",
      "w.enabled as w_enabled",
      "w.failing_since as w_failing_since",
      "e.sid as e_sid",
      "e.account_sid as e_account_sid",
      "e.message_sid as e_message_sid",
      "e.type as e_type",
      "e.recipient as e_recipient",
      "e.date_created as e_date_created",
      "e.smtp_code as e_smtp_code",
      "e.response as e_response",
      "e.error_code as e_error_code",
      "e.error_message as e_error_message",
      "e.retry_at as e_retry_at",
      "m.sid as m_sid",
      "m.account_sid as m_account_sid",
      "m.status as m_status",
      "m.to_addresses as m_to_addresses",
      "m.from_address as m_from_address",
      "m.error_code as m_error_code",
      "m.error_message as m_error_message",
    ])
    .where("q.sid", "in", sids)
    .where("q.lease_owner", "=", owner)
    .orderBy("q.sid")
    .execute();
  const jobs: WebhookJob[] = [];
  const dead: string[] = [];
  for (const row of rows) {
    const job: WebhookJob = {
      sid: row.sid,
      account_sid: row.account_sid,
      webhook_sid: row.webhook_sid,
      event_sid: row.event_sid,
      message_sid: row.message_sid,
      callback_url: row.callback_url,
      attempts: Number(row.attempts),
      created_at: Number(row.created_at),
      due_at: Number(row.due_at),
      webhook:
        row.w_sid !== null &&
        row.w_url !== null &&
        row.w_secret_sealed !== null &&
        Number(row.w_enabled) === 1
          ? {
              url: row.w_url,
              secret_sealed: row.w_secret_sealed,
              failing_since: numberOrNull(row.w_failing_since),
            }
          : null,
      event:
        row.e_sid !== null
          ? {
              sid: row.e_sid,
              account_sid: row.e_account_sid as string,
              message_sid: row.e_message_sid as string,
              type: row.e_type as string,
              recipient: row.e_recipient,
              date_created: Number(row.e_date_created),
              smtp_code: numberOrNull(row.e_smtp_code),
              response: row.e_response,
              error_code: numberOrNull(row.e_error_code),
              error_message: row.e_error_message,
              retry_at: numberOrNull(row.e_retry_at),
            }
          : null,
      message:
        row.m_sid !== null
          ? {
              sid: row.m_sid,
              account_sid: row.m_account_sid as string,
              status: row.m_status as string,
              to_addresses: row.m_to_addresses as string,
              from_address: row.m_from_address as string,
              error_code: numberOrNull(row.m_error_code),
              error_message: row.m_error_message,
            }
          : null,
    };
    // Nothing left to send: a webhook deleted or disabled since (its events stay stored, and can be
    // replayed), an event or message gone. Such a job is dropped without a POST.
    const sendable =
      job.webhook_sid !== null
        ? job.webhook !== null && job.event !== null
        : job.callback_url !== null && job.message !== null;
    if (sendable) jobs.push(job);
    else dead.push(job.sid);
  }
  if (dead.length > 0) {
    await db.deleteFrom("webhook_queue").where("sid", "in", dead).where("lease_owner", "=", owner).execute();
  }
  return jobs;
}

/** Leaves out the jobs of these targets (a webhook's have webhook_sid set; a callback's, callback_url). */
function skipFilter(skip: WebhookTargets): RawBuilder<boolean> {
  const notWebhooks =
    skip.webhookSids.length === 0
      ? sql`1 = 1`
      : sql`(webhook_sid is null or webhook_sid not in (${sql.join(skip.webhookSids)}))`;
  const notCallbacks =
    skip.callbackUrls.length === 0
      ? sql`1 = 1`
      : sql`(callback_url is null or callback_url not in (${sql.join(skip.callbackUrls)}))`;
  return sql<boolean>`${notWebhooks} and ${notCallbacks}`;
}

export async function nextWebhookDueAt(db: Kysely<Database>, skip?: WebhookTargets): Promise<number | null> {
  const result = await sql<{ due_at: number | string }>`
    select due_at from webhook_queue
    where lease_owner is null and ${skip ? skipFilter(skip) : sql`1 = 1`}
    order by due_at limit 1`.execute(db);
  const row = result.rows[0];
  return row ? Number(row.due_at) : null;
}

export async function recordWebhookAttempts(
  db: Kysely<Database>,
  dialect: StoreDialect["name"],
  records: readonly WebhookAttemptRecord[],
): Promise<WebhookAttemptResult[]> {
  if (records.length === 0) return [];
  return db.transaction().execute((trx) => recordWebhookAttemptsIn(trx, dialect, records));
}

/**
 * recordWebhookAttempts' writes, inside a transaction the caller holds (on SQLite, the group commit's:
 * see Store.recordWebhookAttempts).
 */
export async function recordWebhookAttemptsIn(
  trx: Kysely<Database>,
  dialect: StoreDialect["name"],
  records: readonly WebhookAttemptRecord[],
): Promise<WebhookAttemptResult[]> {
  if (records.length === 0) return [];
  // Webhook rows are locked in SID order in every transaction (PostgreSQL), so two processes
  // recording attempts of the same webhooks never wait on each other in a cycle.
  const order = records
    .map((record, index) => ({ record, index }))
    .sort(
      (a, b) => compare(a.record.job.webhook_sid ?? "", b.record.job.webhook_sid ?? "") || a.index - b.index,
    );
  const results: WebhookAttemptResult[] = new Array(records.length);
  const deliveries = records.flatMap((record) => (record.delivery ? [record.delivery] : []));
  if (deliveries.length > 0) await trx.insertInto("webhook_deliveries").values(deliveries).execute();
  // Delivered jobs, nearly all of them while receivers answer, settle together: a statement or two
  // for the batch rather than two per job.
  const delivered = order.filter(({ record }) => record.outcome === "delivered");
  for (const owner of new Set(delivered.map(({ record }) => record.owner))) {
    const mine = delivered.filter(({ record }) => record.owner === owner);
    const deleted = await trx
      .deleteFrom("webhook_queue")
      .where(
        "sid",
        "in",
        mine.map(({ record }) => record.job.sid),
      )
      .where("lease_owner", "=", owner)
      .returning("sid")
      .execute();
    const held = new Set(deleted.map((row) => row.sid));
    const succeeded = [
      ...new Set(
        mine.flatMap(({ record }) =>
          held.has(record.job.sid) && record.job.webhook_sid !== null ? [record.job.webhook_sid] : [],
        ),
      ),
    ].sort(compare);
    // A success ends a webhook's failing spell (the row changes only if it was failing).
    if (succeeded.length > 0) {
      await trx
        .updateTable("webhooks")
        .set({ failing_since: null })
        .where("sid", "in", succeeded)
        .where("failing_since", "is not", null)
        .execute();
    }
    for (const { record, index } of mine) {
      results[index] = {
        held: held.has(record.job.sid),
        startedFailing: false,
        disabled: false,
        dropped: 0,
      };
    }
  }
  for (const { record, index } of order) {
    if (record.outcome !== "delivered") results[index] = await recordFailure(trx, dialect, record);
  }
  return results;
}

/** A failed attempt: the job rescheduled or given up, the webhook's failing state, its Notifications. */
async function recordFailure(
  trx: Kysely<Database>,
  dialect: StoreDialect["name"],
  record: WebhookAttemptRecord,
): Promise<WebhookAttemptResult> {
  const { job, owner, now } = record;
  const result: WebhookAttemptResult = { held: false, startedFailing: false, disabled: false, dropped: 0 };
  const settled =
    record.outcome === "retrying"
      ? await trx
          .updateTable("webhook_queue")
          .set((eb) => ({
            due_at: record.retryAt ?? now,
            attempts: eb("attempts", "+", 1),
            lease_owner: null,
            lease_expires_at: null,
          }))
          .where("sid", "=", job.sid)
          .where("lease_owner", "=", owner)
          .executeTakeFirst()
          .then((r) => Number(r.numUpdatedRows))
      : await trx
          .deleteFrom("webhook_queue")
          .where("sid", "=", job.sid)
          .where("lease_owner", "=", owner)
          .executeTakeFirst()
          .then((r) => Number(r.numDeletedRows));
  // Another process holds the job now (this lease ran out): the job and its webhook are its to judge.
  if (settled === 0) return result;
  result.held = true;
  const notify = (log: number, errorCode: number, text: string) =>
    trx
      .insertInto("notifications")
      .values(notificationRow(record, log, errorCode, text))
      .execute();

  if (job.webhook_sid !== null) {
    if (record.failure) {
      const started = await trx
        .updateTable("webhooks")
        .set({ failing_since: now })
        .where("sid", "=", job.webhook_sid)
        .where("failing_since", "is", null)
        .executeTakeFirst();
      if (Number(started.numUpdatedRows) > 0) {
        result.startedFailing = true;
        await notify(1, WEBHOOK_FAILING, record.failure.startedFailing);
      }
      if (record.disableIfFailingSince !== null) {
        const disabled = await trx
          .updateTable("webhooks")
          .set({ enabled: 0, date_updated: now })
          .where("sid", "=", job.webhook_sid)
          .where("enabled", "=", 1)
          .where("failing_since", "<=", record.disableIfFailingSince)
          .executeTakeFirst();
        if (Number(disabled.numUpdatedRows) > 0) {
          result.disabled = true;
          result.dropped = await dropQueuedJobs(trx, dialect, job.webhook_sid);
          await notify(0, WEBHOOK_DISABLED, record.failure.disabled);
          return result;
        }
      }
    }
  }
  if (record.outcome === "failed" && record.failure)
    await notify(0, DELIVERY_GIVEN_UP, record.failure.givenUp);
  return result;
}

/**
 * Removes a disabled webhook's queued jobs. Jobs locked right now (another process is settling or
 * claiming them) are skipped rather than waited for: once claimed, a job of a disabled webhook is
 * dropped without a POST anyway.
 */
async function dropQueuedJobs(
  trx: Kysely<Database>,
  dialect: StoreDialect["name"],
  webhookSid: string,
): Promise<number> {
  const result = await sql`
    delete from webhook_queue where sid in (
      select sid from webhook_queue where webhook_sid = ${webhookSid}
      ${dialect === "postgres" ? sql`for update skip locked` : sql``}
    )`.execute(trx);
  return Number(result.numAffectedRows ?? 0);
}

const {
  WebhookFailing: WEBHOOK_FAILING,
  WebhookDisabled: WEBHOOK_DISABLED,
  DeliveryGivenUp: DELIVERY_GIVEN_UP,
} = WebhookErrorCodes;

function notificationRow(
  record: WebhookAttemptRecord,
  log: number,
  errorCode: number,
  text: string,
): Insertable<NotificationsTable> {
  return {
    sid: newSid("NO", record.now),
    account_sid: record.job.account_sid,
    date_created: record.now,
    log,
    error_code: errorCode,
    message_text: text,
    message_sid: record.job.message_sid,
    request_url: record.failure?.requestUrl ?? null,
    request_method: "POST",
    request_variables: null,
    response_headers: null,
    response_body: record.failure?.responseBody ?? null,
  };
}

function numberOrNull(value: number | string | null | undefined): number | null {
  return value === null || value === undefined ? null : Number(value);
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
