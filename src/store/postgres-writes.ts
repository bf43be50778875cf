import { type CompiledQuery, type Kysely, type RawBuilder, sql } from "kysely";
import { acceptEvents, attemptChanges, type EventRow, type NotificationRow, utcDay } from "./change-rows.js";
import type { BatchOutcome } from "./dialect.js";
import { claimLost, storePostgresAnswers } from "./idempotency-keys.js";
import {
  ATTEMPT_COLUMNS,
  BLOB_COLUMNS,
  columnValue,
  type Database,
  EVENT_COLUMNS,
  MESSAGE_COLUMNS,
  NOTIFICATION_COLUMNS,
  TAG_COLUMNS,
} from "./schema.js";
import type { AcceptedEmail, AttemptRecord, IdempotentAnswer } from "./types.js";

/**
 * The group commit's writes on PostgreSQL (see StoreDialect.writeBatch): one statement per batch,
 * not a few per row, because every statement is a round trip to the server. Rows travel as one
 * array per column (unnest), so each statement's text is the same whatever the batch size, and it is
 * run as a named prepared statement: PostgreSQL plans it once per connection instead of at every
 * batch (planning was about a third of an accept's time). The SQLite store writes the same rows
 * with statements prepared once, one per row (sqlite-writes.ts); both must keep the same meaning,
 * and the store tests run against both.
 */
export async function writePostgresBatch(
  db: Kysely<Database>,
  runNamed: RunNamed,
  accepted: AcceptedEmail[],
  records: AttemptRecord[],
  wakeUp: WakeUp,
  answers: IdempotentAnswer[] = [],
): Promise<BatchOutcome> {
  const accepts = accepted.length > 0 ? acceptStatement(db, accepted, wakeUp) : undefined;
  const attempts = records.length > 0 ? attemptStatement(db, records) : undefined;
  // Idempotency-Key answers go in the accepts' transaction: stored together or not at all. A claim
  // taken over (its key now another request's) fails the batch, rolled back, before it commits.
  if (answers.length > 0) {
    return db.transaction().execute(async (trx) => {
      if ((await storePostgresAnswers(trx, answers)) < answers.length)
        throw claimLost(answers[0] as IdempotentAnswer);
      const accept = accepts ? queuedJobs((await trx.executeQuery(accepts.query)).rows) : false;
      if (!attempts) return { owned: new Set<AttemptRecord>(), jobsQueued: accept };
      const outcome = outcomeOf(records, (await trx.executeQuery(attempts.query)).rows);
      return { ...outcome, jobsQueued: outcome.jobsQueued || accept };
    });
  }
  // Accepts and attempts commit in batches of their own on PostgreSQL (see Store), so each batch is
  // one statement, its own transaction; the two meet in one batch only if a caller groups them.
  if (accepts && attempts) {
    return db.transaction().execute(async (trx) => {
      const accept = await trx.executeQuery(accepts.query);
      const outcome = outcomeOf(records, (await trx.executeQuery(attempts.query)).rows);
      return { ...outcome, jobsQueued: outcome.jobsQueued || queuedJobs(accept.rows) };
    });
  }
  const acceptQueued = accepts ? queuedJobs(await runNamed(accepts.name, accepts.query)) : false;
  if (!attempts) return { owned: new Set(), jobsQueued: acceptQueued };
  const outcome = outcomeOf(records, await runNamed(attempts.name, attempts.query));
  return { ...outcome, jobsQueued: outcome.jobsQueued || acceptQueued };
}

/** Whether a statement's answer (a `jobs` count on its rows) says it queued webhook jobs. */
function queuedJobs(rows: unknown[]): boolean {
  return (rows as Array<{ jobs: number | string | null }>).some((row) => Number(row.jobs) > 0);
}

/** Runs a query as the named prepared statement `name` (its text must always be the same). */
export type RunNamed = (name: string, query: CompiledQuery) => Promise<unknown[]>;

/** How accepts wake the workers of other processes: NOTIFY on a channel, saying who sent it. */
export interface WakeUp {
  /** An SQL expression naming the channel (see postgres.ts). */
  channelSql: string;
  /** This store's own mark, so that its listener can ignore its own notifications. */
  origin: string;
}

interface Statement {
  name: string;
  query: CompiledQuery;
}

/** unnest() of one array per column, each cast to the column's type. */
function columnsOf<T extends object>(
  rows: readonly T[],
  columns: readonly { name: string; pgType: string; default?: number }[],
): RawBuilder<unknown> {
  return sql.join(
    columns.map((column) => sql`${rows.map((row) => columnValue(row, column))}::${sql.raw(column.pgType)}[]`),
  );
}

function columnNames(columns: readonly { name: string }[]): RawBuilder<unknown> {
  return sql.raw(columns.map((column) => column.name).join(", "));
}

/**
 * Inserts accepted messages with their queue rows and wakes other processes once it is committed:
 * the notification is part of the same statement. One statement instead of BEGIN, two INSERTs, NOTIFY
 * and COMMIT: the same atomicity (a statement is its own transaction; data-modifying CTEs always run
 * to completion) in one round trip. Messages accepted leased are this process's to deliver, so a
 * batch of only those notifies no one: NOTIFY serialises the commits of every notifying transaction
 * in the database, and the other processes would find nothing to claim.
 */
function acceptStatement(db: Kysely<Database>, batch: AcceptedEmail[], wakeUp: WakeUp): Statement {
  const messages = batch.map((accepted) => accepted.message);
  const notify = batch.some((accepted) => accepted.lease === null);
  const tags = batch.flatMap((accepted) => accepted.tags);
  // The same bytes twice in a batch are stored once (as across batches).
  const blobs = [...new Map(batch.flatMap((a) => a.blobs).map((blob) => [blob.sha256, blob])).values()];
  // Most batches carry neither tags nor attachments: those keep the shorter statement (its own name).
  const rich = tags.length > 0 || blobs.length > 0;
  const query = sql`
    with input as (
      select * from unnest(
        ${columnsOf(messages, MESSAGE_COLUMNS)},
        ${batch.map((accepted) => accepted.lease?.owner ?? null)}::text[],
        ${batch.map((accepted) => accepted.lease?.expiresAt ?? null)}::bigint[],
        ${messages.map((message) => utcDay(message.date_created))}::text[]
      ) as t(${columnNames(MESSAGE_COLUMNS)}, lease_owner, lease_expires_at, usage_day)
    ),
    accepted as (
      insert into email_messages (${columnNames(MESSAGE_COLUMNS)})
      select ${columnNames(MESSAGE_COLUMNS)} from input
      returning sid
    ),
    queued as (
      insert into delivery_queue (message_sid, due_at, lease_owner, lease_expires_at)
      select input.sid, coalesce(input.send_at, input.date_created), input.lease_owner, input.lease_expires_at
      from accepted join input on input.sid = accepted.sid
    ),
    ${eventInserts(acceptEvents(messages), sql`true`)},
    usage as (
      insert into usage_counters (account_sid, day, category, shard, count)
      select account_sid, usage_day, 'email', ${usageShard()}, count(*) from input
      group by account_sid, usage_day order by account_sid, usage_day
      on conflict (account_sid, day, category, shard)
        do update set count = usage_counters.count + excluded.count
    )${rich ? richInserts(tags, blobs, attachmentRefs(batch)) : sql``}
    select ${notify ? sql`pg_notify(${sql.raw(wakeUp.channelSql)}, ${wakeUp.origin})` : sql`null`} as notified,
      (select count(*) from event_jobs) as jobs`;
  const name = `mailroom_accept${notify ? "_notify" : ""}${rich ? "_rich" : ""}`;
  return { name, query: query.compile(db) };
}

/**
 * Events, as parts of a statement (`events`, `event_jobs`): the events whose message the statement
 * changed (`kept`: a condition on e.message_sid), and for each a job for every enabled webhook of its
 * account that wants its type (`events` lists types between commas; null is every type).
 */
function eventInserts(events: readonly EventRow[], kept: RawBuilder<unknown>): RawBuilder<unknown> {
  return sql`events as (
      insert into email_events (${columnNames(EVENT_COLUMNS)})
      select e.* from unnest(${columnsOf(events, EVENT_COLUMNS)}) as e(${columnNames(EVENT_COLUMNS)})
      where ${kept}
      returning sid, account_sid, message_sid, type, date_created
    ),
    event_jobs as (
      insert into webhook_queue (sid, account_sid, webhook_sid, event_sid, message_sid, created_at, due_at)
      select e.sid || w.sid, e.account_sid, w.sid, e.sid, e.message_sid, e.date_created, e.date_created
      from events e join webhooks w on w.account_sid = e.account_sid and w.enabled = 1
        and (w.events is null or position(',' || e.type || ',' in ',' || w.events || ',') > 0)
      returning 1
    )`;
}

/**
 * Which of a usage row's shards a statement adds to: concurrent statements (two accept lanes, other
 * processes) then rarely wait on one another's row lock, and rows are locked in key order (no deadlock).
 */
function usageShard(): number {
  return Math.floor(Math.random() * USAGE_SHARDS);
}

const USAGE_SHARDS = 16;

/**
 * Tags and attachment bytes, as two more parts of the accept statement. Tags reference their
 * message, so they are inserted from `accepted` (after it, within the statement); bytes already
 * stored for another message are kept as they are (stored once).
 */
function richInserts(
  tags: AcceptedEmail["tags"],
  blobs: AcceptedEmail["blobs"],
  refs: { sha256: string; message_sid: string }[],
): RawBuilder<unknown> {
  return sql`,
    tagged as (
      insert into email_tags (${columnNames(TAG_COLUMNS)})
      select t.* from unnest(${columnsOf(tags, TAG_COLUMNS)}) as t(${columnNames(TAG_COLUMNS)})
      where t.message_sid in (select sid from accepted)
    ),
    stored_blobs as (
      insert into attachment_blobs (${columnNames(BLOB_COLUMNS)})
      select * from unnest(${columnsOf(blobs, BLOB_COLUMNS)})
      on conflict (sha256) do nothing
    ),
    referenced as (
      insert into attachment_refs (sha256, message_sid)
      select r.* from unnest(${refs.map((r) => r.sha256)}::text[], ${refs.map((r) => r.message_sid)}::text[])
        as r(sha256, message_sid)
      where r.message_sid in (select sid from accepted)
    )`;
}

/** Which message uses which bytes (the purge deletes bytes with their last reference), once per pair. */
function attachmentRefs(batch: AcceptedEmail[]): { sha256: string; message_sid: string }[] {
  return batch.flatMap(({ message, blobs }) =>
    [...new Set(blobs.map((blob) => blob.sha256))].map((sha256) => ({ sha256, message_sid: message.sid })),
  );
}

/**
 * A batch of attempts in one statement (data-modifying CTEs, one round trip instead of eight):
 *
 * - `locked` takes the row locks on the batch's queue rows still leased to each record's owner, in SID
 *   order first, like claimDue and releaseLeases, so a claimer re-leasing a message (its lease ran out)
 *   skips the locked row instead of deadlocking with us;
 * - of those, final attempts delete their queue row and retries put it back at its retry time;
 * - only the messages so settled get their new state: a worker that stalled past its lease must not undo
 *   the claim of the one that took over, which decides the message's state when its own attempt ends;
 * - the MIME of first attempts and every attempt row are stored in any case, as history.
 *
 * It returns the SIDs of the messages it settled.
 */
function attemptStatement(db: Kysely<Database>, records: AttemptRecord[]): Statement {
  const column = <T>(value: (record: AttemptRecord) => T) => records.map(value);
  const mimes = records.filter((record) => record.mime !== undefined);
  const changes = records.map(attemptChanges);
  const events = changes.flatMap((change) => change.events);
  const notifications = changes.flatMap((change) => (change.notification ? [change.notification] : []));
  const usage = changes.map((change) => change.usage);
  const query = sql<{ message_sid: string }>`
    with input as (
      select * from unnest(
        ${column((r) => r.attempt.message_sid)}::text[],
        ${column((r) => r.owner)}::text[],
        ${column((r) => r.retryAt)}::bigint[],
        ${column((r) => r.status)}::text[],
        ${column((r) => r.errorCode)}::integer[],
        ${column((r) => r.errorMessage)}::text[],
        ${column((r) => r.attempt.date_finished)}::bigint[],
        ${column((r) => r.dateDelivered)}::bigint[],
        ${column((r) => r.attempt.account_sid)}::text[],
        ${usage}::text[],
        ${column((r) => utcDay(r.attempt.date_finished))}::text[]
      ) as t(sid, owner, retry_at, status, error_code, error_message, finished, delivered,
             account_sid, usage_category, usage_day)
    ),
    locked as materialized (
      select q.message_sid from delivery_queue q
      join input on input.sid = q.message_sid and input.owner = q.lease_owner
      order by q.message_sid
      for update of q
    ),
    settled as (
      delete from delivery_queue q using input
      where q.message_sid = input.sid and q.lease_owner = input.owner and input.retry_at is null
        and q.message_sid in (select message_sid from locked)
      returning q.message_sid
    ),
    rescheduled as (
      update delivery_queue q set due_at = input.retry_at, lease_owner = null, lease_expires_at = null
      from input
      where q.message_sid = input.sid and q.lease_owner = input.owner and input.retry_at is not null
        and q.message_sid in (select message_sid from locked)
      returning q.message_sid
    ),
    owned as (select message_sid from settled union all select message_sid from rescheduled),
    updated as (
      update email_messages m set status = input.status, error_code = input.error_code,
        error_message = input.error_message, num_attempts = m.num_attempts + 1,
        date_updated = input.finished, date_delivered = input.delivered
      from input
      where m.sid = input.sid and m.sid in (select message_sid from owned)
    ),
    mime as (
      insert into email_mime (message_sid, raw)
      select * from unnest(
        ${mimes.map((r) => r.attempt.message_sid)}::text[],
        ${mimes.map((r) => r.mime as string)}::text[]
      )
      on conflict (message_sid) do nothing
    ),
    attempts as (
      insert into email_attempts (${columnNames(ATTEMPT_COLUMNS)})
      select * from unnest(${columnsOf(
        records.map((record) => record.attempt),
        ATTEMPT_COLUMNS,
      )})
    ),
    ${eventInserts(events, sql`e.message_sid in (select message_sid from owned)`)},
    ${notificationInsert(notifications)},
    usage as (
      insert into usage_counters (account_sid, day, category, shard, count)
      select account_sid, usage_day, usage_category, ${usageShard()}, count(*) from input
      where usage_category is not null and sid in (select message_sid from owned)
      group by account_sid, usage_day, usage_category order by account_sid, usage_day, usage_category
      on conflict (account_sid, day, category, shard)
        do update set count = usage_counters.count + excluded.count
    ),
    callbacks as (
      insert into webhook_queue (sid, account_sid, message_sid, callback_url, created_at, due_at)
      select m.sid || 'CB', m.account_sid, m.sid, m.status_callback, input.finished, input.finished
      from email_messages m join input on input.sid = m.sid
      where input.retry_at is null and m.status_callback is not null
        and m.sid in (select message_sid from owned)
      on conflict (sid) do nothing
      returning 1
    )
    select message_sid, (select count(*) from event_jobs) + (select count(*) from callbacks) as jobs
    from owned`;
  return { name: "mailroom_attempts", query: query.compile(db) };
}

/** The notifications of settled messages (a part of the attempt statement). */
function notificationInsert(rows: readonly NotificationRow[]): RawBuilder<unknown> {
  return sql`notes as (
      insert into notifications (${columnNames(NOTIFICATION_COLUMNS)})
      select n.* from unnest(${columnsOf(rows, NOTIFICATION_COLUMNS)}) as n(${columnNames(NOTIFICATION_COLUMNS)})
      where n.message_sid in (select message_sid from owned)
    )`;
}

/** The records whose messages the attempt statement settled (it returns their SIDs), and whether it queued jobs. */
function outcomeOf(records: AttemptRecord[], rows: unknown[]): BatchOutcome {
  const settled = new Set((rows as Array<{ message_sid: string }>).map((row) => row.message_sid));
  return {
    owned: new Set(records.filter((record) => settled.has(record.attempt.message_sid))),
    jobsQueued: queuedJobs(rows),
  };
}
