import { type Kysely, sql } from "kysely";
import type { Database } from "./schema.js";
import type { AcceptedEmail, AttemptRecord } from "./store.js";

/**
 * The group commit's writes on PostgreSQL (see StoreDialect.writeBatch): one statement per batch,
 * not a few per row, because every statement is a round trip to the server. The SQLite store writes
 * the same rows with statements prepared once, one per row (sqlite-writes.ts); both must keep the
 * same meaning, and the store tests run against both.
 */
export async function writePostgresBatch(
  db: Kysely<Database>,
  accepted: AcceptedEmail[],
  records: AttemptRecord[],
  wakeUp: WakeUp,
): Promise<Set<AttemptRecord>> {
  if (records.length === 0) {
    // Accepts alone are one statement, so they need no BEGIN/COMMIT.
    await insertAccepted(db, accepted, wakeUp);
    return new Set();
  }
  // Attempts alone are one statement too. (Accepts commit in their own batches on PostgreSQL, so
  // the two meet here only if a caller groups them.)
  if (accepted.length === 0) return writeAttempts(db, records);
  return db.transaction().execute(async (trx) => {
    await insertAccepted(trx, accepted, wakeUp);
    return writeAttempts(trx, records);
  });
}

/** How accepts wake the workers of other processes: NOTIFY on a channel, saying who sent it. */
export interface WakeUp {
  /** An SQL expression naming the channel (see postgres.ts). */
  channelSql: string;
  /** This store's own mark, so that its listener can ignore its own notifications. */
  origin: string;
}

/**
 * Inserts accepted messages with their queue rows and wakes other processes once it is committed:
 * the notification is part of the same statement. One statement instead of BEGIN, two INSERTs, NOTIFY
 * and COMMIT: the same atomicity (a statement is its own transaction; data-modifying CTEs always run
 * to completion) in one round trip. Messages accepted leased are this process's to deliver, so a
 * batch of only those notifies no one: NOTIFY serialises the commits of every notifying transaction
 * in the database, and the other processes would find nothing to claim.
 */
async function insertAccepted(db: Kysely<Database>, batch: AcceptedEmail[], wakeUp: WakeUp): Promise<void> {
  const leased = batch.filter((accepted) => accepted.lease !== null);
  const leases = sql`unnest(
    ${leased.map((a) => a.message.sid)}::text[],
    ${leased.map((a) => a.lease?.owner)}::text[],
    ${leased.map((a) => a.lease?.expiresAt)}::bigint[]
  ) as lease(sid, owner, expires_at)`;
  await db
    .with("accepted", (q) =>
      q
        .insertInto("email_messages")
        .values(batch.map((accepted) => accepted.message))
        .returning(["sid", "date_created"]),
    )
    .with("queued", (q) =>
      q
        .insertInto("delivery_queue")
        .columns(["message_sid", "due_at", "lease_owner", "lease_expires_at"])
        .expression(
          sql`select accepted.sid, accepted.date_created, lease.owner, lease.expires_at
              from accepted left join ${leases} on lease.sid = accepted.sid`,
        )
        .returning("message_sid"),
    )
    .selectNoFrom(
      leased.length < batch.length
        ? sql<string>`pg_notify(${sql.raw(wakeUp.channelSql)}, ${wakeUp.origin})`.as("notified")
        : sql<string>`null`.as("notified"),
    )
    .execute();
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
 * Returns the records whose messages it settled.
 */
async function writeAttempts(db: Kysely<Database>, records: AttemptRecord[]): Promise<Set<AttemptRecord>> {
  const column = <T>(value: (record: AttemptRecord) => T) => records.map(value);
  const attempt = (record: AttemptRecord) => record.attempt;
  const mimes = records.filter((record) => record.mime !== undefined);
  const { rows } = await sql<{ message_sid: string }>`
    with input as (
      select * from unnest(
        ${column((r) => r.attempt.message_sid)}::text[],
        ${column((r) => r.owner)}::text[],
        ${column((r) => r.retryAt)}::bigint[],
        ${column((r) => r.status)}::text[],
        ${column((r) => r.errorCode)}::integer[],
        ${column((r) => r.errorMessage)}::text[],
        ${column((r) => r.attempt.date_finished)}::bigint[],
        ${column((r) => r.dateDelivered)}::bigint[]
      ) as t(sid, owner, retry_at, status, error_code, error_message, finished, delivered)
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
      insert into email_attempts (sid, message_sid, account_sid, attempt, date_started, date_finished,
        outcome, smtp_code, response, error_code, error_message, recipients)
      select * from unnest(
        ${column((r) => attempt(r).sid)}::text[],
        ${column((r) => attempt(r).message_sid)}::text[],
        ${column((r) => attempt(r).account_sid)}::text[],
        ${column((r) => attempt(r).attempt)}::integer[],
        ${column((r) => attempt(r).date_started)}::bigint[],
        ${column((r) => attempt(r).date_finished)}::bigint[],
        ${column((r) => attempt(r).outcome)}::text[],
        ${column((r) => attempt(r).smtp_code ?? null)}::integer[],
        ${column((r) => attempt(r).response ?? null)}::text[],
        ${column((r) => attempt(r).error_code ?? null)}::integer[],
        ${column((r) => attempt(r).error_message ?? null)}::text[],
        ${column((r) => attempt(r).recipients ?? null)}::text[]
      )
    )
    select message_sid from owned`.execute(db);
  const settled = new Set(rows.map((row) => row.message_sid));
  return new Set(records.filter((record) => settled.has(record.attempt.message_sid)));
}
