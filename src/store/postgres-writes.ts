import { type Kysely, sql, type Transaction } from "kysely";
import type { Database } from "./schema.js";
import type { AcceptedEmail, AttemptRecord } from "./store.js";

/**
 * The group commit's writes on PostgreSQL (see StoreDialect.writeBatch): a few statements per batch,
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
  return db.transaction().execute(async (trx) => {
    if (accepted.length > 0) await insertAccepted(trx, accepted, wakeUp);
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
 * Locks these queue rows, in SID order, before an attempt batch settles them: queue rows first, like
 * claimDue and releaseLeases, so a claimer re-leasing a message (its lease ran out) skips the locked
 * row instead of deadlocking with us.
 */
async function lockQueueRows(trx: Transaction<Database>, sids: readonly string[]): Promise<void> {
  await trx
    .selectFrom("delivery_queue")
    .select("message_sid")
    .where("message_sid", "in", sids)
    .orderBy("message_sid")
    .forUpdate()
    .execute();
}

/**
 * Writes a batch of attempts in a few statements, not a few per attempt: the queue rows (deleted
 * when final, rescheduled for a retry, in each case only while the worker still holds the lease),
 * the MIME of first attempts, the messages' new state and the attempt rows.
 */
async function writeAttempts(
  trx: Transaction<Database>,
  batch: AttemptRecord[],
): Promise<Set<AttemptRecord>> {
  // One order for every writer (by SID), so two batches locking the same rows cannot deadlock.
  const ordered = [...batch].sort((a, b) => (a.attempt.message_sid < b.attempt.message_sid ? -1 : 1));
  const owned = new Set<AttemptRecord>();
  await lockQueueRows(trx, sidsOf(ordered));
  for (const record of await settleFinal(trx, ordered)) owned.add(record);
  for (const record of await reschedule(trx, ordered)) owned.add(record);
  const mimes = ordered.filter((record) => record.mime !== undefined);
  if (mimes.length > 0) {
    await trx
      .insertInto("email_mime")
      .values(
        mimes.map((record) => ({ message_sid: record.attempt.message_sid, raw: record.mime as string })),
      )
      .onConflict((oc) => oc.column("message_sid").doNothing())
      .execute();
  }
  for (const group of sameOutcome(ordered.filter((record) => owned.has(record)))) {
    await updateMessages(trx, group);
  }
  await trx
    .insertInto("email_attempts")
    .values(ordered.map((record) => record.attempt))
    .execute();
  return owned;
}

/**
 * A worker that stalled past its lease must not undo the claim of the one that took over, which
 * settles the queue row (and decides the message's state) itself when its own attempt ends. So queue
 * rows are settled only where the record's owner still holds the lease, and only those messages change.
 */

/** Removes the queue rows of final attempts still leased by their owners; returns the records it removed. */
function settleFinal(trx: Transaction<Database>, records: AttemptRecord[]): Promise<AttemptRecord[]> {
  const finals = records.filter((record) => record.retryAt === null);
  return whereStillLeased(finals, (owner, sids) =>
    trx
      .deleteFrom("delivery_queue")
      .where("lease_owner", "=", owner)
      .where("message_sid", "in", sids)
      .returning("message_sid")
      .execute(),
  );
}

/**
 * Puts retried messages back in the queue, each at its retry time, where their owners still hold the
 * lease; returns the records it rescheduled. One UPDATE per batch: during a relay outage every
 * attempt is a retry, and a statement each was a round trip each on PostgreSQL.
 */
function reschedule(trx: Transaction<Database>, records: AttemptRecord[]): Promise<AttemptRecord[]> {
  const retries = records.filter((record) => record.retryAt !== null);
  return whereStillLeased(retries, (owner, sids, mine) =>
    trx
      .updateTable("delivery_queue")
      .set({
        due_at: perMessage("message_sid", mine, (record) => record.retryAt as number),
        lease_owner: null,
        lease_expires_at: null,
      })
      .where("lease_owner", "=", owner)
      .where("message_sid", "in", sids)
      .returning("message_sid")
      .execute(),
  );
}

/**
 * Runs `statement` (which must touch only rows still leased to `owner` and return their SIDs) once per
 * owner, and returns the records whose rows it touched. One worker writes a batch in practice;
 * grouping by owner keeps the queries right if not.
 */
async function whereStillLeased(
  records: AttemptRecord[],
  statement: (
    owner: string,
    sids: string[],
    mine: AttemptRecord[],
  ) => Promise<Array<{ message_sid: string }>>,
): Promise<AttemptRecord[]> {
  const touched: AttemptRecord[] = [];
  for (const mine of groupBy(records, (record) => record.owner)) {
    const rows = await statement((mine[0] as AttemptRecord).owner, sidsOf(mine), mine);
    const sids = new Set(rows.map((row) => row.message_sid));
    touched.push(...mine.filter((record) => sids.has(record.attempt.message_sid)));
  }
  return touched;
}

/** `items` in groups of equal `key`, each group in the items' order. */
function groupBy<T>(items: T[], key: (item: T) => string): T[][] {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const group = groups.get(key(item));
    if (group) group.push(item);
    else groups.set(key(item), [item]);
  }
  return [...groups.values()];
}

/**
 * One value per message in a single UPDATE: `case <key> when <sid> then <value> … end`. The cast:
 * PostgreSQL would otherwise type a CASE of bare parameters as text.
 */
function perMessage<T extends number | null>(
  key: "sid" | "message_sid",
  records: AttemptRecord[],
  value: (record: AttemptRecord) => T,
) {
  if (records.length === 1) return sql<T>`${value(records[0] as AttemptRecord)}`;
  const arms = records.map(
    (record) => sql`when ${record.attempt.message_sid} then cast(${value(record)} as bigint)`,
  );
  return sql<T>`case ${sql.ref(key)} ${sql.join(arms, sql` `)} end`;
}

/** Records whose messages get the same status and error, so that one UPDATE serves each group. */
function sameOutcome(records: AttemptRecord[]): AttemptRecord[][] {
  return groupBy(records, (record) => JSON.stringify([record.status, record.errorCode, record.errorMessage]));
}

/** One UPDATE for a group of messages with the same outcome; the times differ per message. */
async function updateMessages(trx: Transaction<Database>, group: AttemptRecord[]): Promise<void> {
  const first = group[0] as AttemptRecord;
  await trx
    .updateTable("email_messages")
    .set((eb) => ({
      status: first.status,
      error_code: first.errorCode,
      error_message: first.errorMessage,
      num_attempts: eb("num_attempts", "+", 1),
      date_updated: perMessage("sid", group, (record) => record.attempt.date_finished),
      date_delivered: perMessage("sid", group, (record) => record.dateDelivered),
    }))
    .where("sid", "in", sidsOf(group))
    .execute();
}

function sidsOf(records: AttemptRecord[]): string[] {
  return records.map((record) => record.attempt.message_sid);
}
