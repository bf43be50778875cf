import { type Kysely, sql, type WhereInterface } from "kysely";
import { type BatchOutcome, QUEUE_KEYS, type QueueTable, type StoreDialect } from "./dialect.js";
import type { DomainPatch, DomainRow, InsertDomainOutcome, SigningDomainRow } from "./domain-queries.js";
import * as domains from "./domain-queries.js";
import { GroupCommit } from "./group-commit.js";
import * as hooks from "./hooks-queries.js";
import * as idempotency from "./idempotency-keys.js";
import * as lifecycle from "./lifecycle-queries.js";
import { containsPattern } from "./like-pattern.js";
import { findNotification, listNotifications, usageByDay } from "./restcomm-reads.js";
import { cancelUnleased, rescheduleUnleased, type ScheduleChange } from "./schedule-queries.js";
import type { Database } from "./schema.js";
import * as templates from "./template-queries.js";
import type {
  AcceptedEmail,
  AccountCreateChecks,
  AccountCreateOutcome,
  AccountKey,
  AccountPatch,
  AccountRow,
  AttemptRecord,
  EmailAttemptRow,
  EmailFilter,
  EmailMessageRow,
  EmailMessageView,
  EventFilter,
  IdempotencyClaim,
  IdempotencyClaimRequest,
  IdempotentAnswer,
  Lease,
  MailStore,
  NewAccount,
  NewEmailMessage,
  NewTemplate,
  NewWebhook,
  NewWebhookJob,
  NotificationFilter,
  NotificationRow,
  Page,
  QueueStats,
  ReplayRange,
  RetryContext,
  TemplatePatch,
  TemplateRow,
  TemplateWrite,
  UsageDayCount,
  UsageQuery,
  WebhookHandOff,
  WebhookJobsAnnounced,
  WebhookPatch,
  WebhookRow,
} from "./types.js";
import { NO_EXTRAS } from "./types.js";
import { isStoreFull, isStoreUnavailable } from "./unavailable.js";
import {
  claimWebhookJobs,
  nextWebhookDueAt,
  recordWebhookAttempts,
  recordWebhookAttemptsIn,
  type WebhookAttemptRecord,
  type WebhookAttemptResult,
  type WebhookJob,
  type WebhookTargets,
} from "./webhook-jobs.js";

/**
 * The store: every query, written once with Kysely for both databases; the dialect (dialect.ts)
 * supplies what differs. Row types and the MailStore interface are in types.ts.
 */
export class Store implements MailStore {
  readonly dialect: StoreDialect;
  private readonly db: Kysely<Database>;
  private readonly acceptWrites: GroupCommit<PendingWrite, WriteResult>;
  private readonly attemptWrites: GroupCommit<PendingWrite, WriteResult>;
  /** Told when a write batch queued webhook jobs (listenWebhookJobs). */
  private readonly jobListeners = new Set<(announced: WebhookJobsAnnounced) => void>();
  /**
   * The webhook sender's room for jobs handed over at write time (offerWebhookRoom; SQLite only). A
   * holder whose fields change, not fields of the store: the store thread answers calls through an
   * object whose prototype is the store (store-thread.ts), where assigning would shadow them.
   */
  private readonly handOffs: { current: WebhookHandOff | undefined; leaseMs: number } = {
    current: undefined,
    leaseMs: 0,
  };
  /** The account-tree change this process is running or waiting to run (see serialiseAccountChange). */
  private accountChanges: Promise<unknown> = Promise.resolve();
  /** The error of the last write, while it was a full disk (cleared by a write that commits). */
  private diskFull: unknown;
  /** This process's worker, while it says it is alive (startHeartbeat). */
  private heartbeat: { owner: string; timeoutMs: number; timer: NodeJS.Timeout } | undefined;

  constructor(db: Kysely<Database>, dialect: StoreDialect) {
    this.db = db;
    this.dialect = dialect;
    // Writes arriving together share one transaction (see group-commit.ts). With one writer (SQLite),
    // accepts and attempt records share one queue: under load both kinds arrive all the time, and one
    // commit (one fsync) for both halves the commits. Where writers run side by side (PostgreSQL, on
    // separate connections), each kind has its own queue, so that an accept is not held up behind an
    // attempt batch's several round trips.
    const groupCommit = (lanes: number) =>
      new GroupCommit<PendingWrite, WriteResult>((batch) => this.commitWrites(batch), {
        lanes,
        isolate: (error) => !isStoreUnavailable(error) && !isStoreFull(error),
      });
    this.acceptWrites = groupCommit(dialect.acceptLanes);
    this.attemptWrites = dialect.acceptLanes > 1 ? groupCommit(1) : this.acceptWrites;
  }

  get kind(): StoreDialect["name"] {
    return this.dialect.name;
  }

  listenQueued(listener: () => void): Promise<() => Promise<void>> {
    return this.dialect.listenQueued(listener);
  }

  listenWebhookJobs(listener: (announced: WebhookJobsAnnounced) => void): () => void {
    this.jobListeners.add(listener);
    return () => this.jobListeners.delete(listener);
  }

  /**
   * Only on SQLite, whose one process writes every job its sender will send: there the happy path
   * needs no claim at all. (On PostgreSQL the room is ignored and every job is claimed.)
   */
  async offerWebhookRoom(
    owner: string,
    leaseMs: number,
    room: Record<string, number> | null,
  ): Promise<Record<string, number>> {
    if (this.dialect.acceptLanes > 1) return {};
    const handOffs = this.handOffs;
    if (room === null) {
      if (handOffs.current?.owner !== owner) return {};
      const left = Object.fromEntries(handOffs.current.room);
      handOffs.current = undefined;
      return left;
    }
    if (handOffs.current?.owner !== owner) handOffs.current = { owner, leaseExpiresAt: 0, room: new Map() };
    handOffs.leaseMs = leaseMs;
    const current = handOffs.current;
    for (const [webhookSid, more] of Object.entries(room)) {
      current.room.set(webhookSid, (current.room.get(webhookSid) ?? 0) + more);
    }
    return {};
  }

  /** Brings the schema up to date; safe when several processes start at once (see StoreDialect.migrate). */
  async migrate(): Promise<void> {
    await this.dialect.migrate(this.db);
  }

  /**
   * Fails when the store cannot be reached, and also while its disk is full: after a write failed for
   * lack of space, a small write is tried (and rolled back in effect) until one commits. A read alone
   * would still answer, and /readyz would keep sending traffic to a node that cannot accept it.
   */
  async ping(): Promise<void> {
    await sql`select 1`.execute(this.db);
    if (this.diskFull === undefined) return;
    try {
      await this.db.transaction().execute(async (trx) => {
        await trx
          .insertInto("attachment_blobs")
          .values({ sha256: WRITE_PROBE, size: WRITE_PROBE_BYTES.byteLength, content: WRITE_PROBE_BYTES })
          .execute();
        await trx.deleteFrom("attachment_blobs").where("sha256", "=", WRITE_PROBE).execute();
      });
      this.diskFull = undefined;
    } catch (error) {
      if (isStoreFull(error)) this.diskFull = error;
      throw error;
    }
  }

  async close(): Promise<void> {
    if (this.heartbeat) clearInterval(this.heartbeat.timer);
    await this.db.destroy();
    await this.dialect.close();
  }

  // ---- accounts ----

  async countAccounts(): Promise<number> {
    const row = await this.db
      .selectFrom("accounts")
      .select((eb) => eb.fn.countAll<number | string>().as("n"))
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async insertAccount(account: NewAccount): Promise<void> {
    await this.db.insertInto("accounts").values(account).execute();
  }

  async findAccountBySid(sid: string): Promise<AccountRow | undefined> {
    return this.db.selectFrom("accounts").selectAll().where("sid", "=", sid).executeTakeFirst();
  }

  async findAccountByEmail(email: string): Promise<AccountRow | undefined> {
    return this.db
      .selectFrom("accounts")
      .selectAll()
      .where("email_address", "=", email.toLowerCase())
      .executeTakeFirst();
  }

  async listSubAccounts(parentSid: string): Promise<AccountRow[]> {
    return this.db
      .selectFrom("accounts")
      .selectAll()
      .where("parent_sid", "=", parentSid)
      .orderBy("date_created")
      .orderBy("sid")
      .execute();
  }

  async listAccounts(): Promise<AccountRow[]> {
    return this.db.selectFrom("accounts").selectAll().orderBy("date_created").orderBy("sid").execute();
  }

  async findAccountLineage(key: AccountKey): Promise<AccountRow[]> {
    return readLineage(this.db, key);
  }

  async createAccount(account: NewAccount, checks: AccountCreateChecks): Promise<AccountCreateOutcome> {
    return this.serialiseAccountChange(async (trx) => {
      const taken = await trx
        .selectFrom("accounts")
        .select("sid")
        .where("email_address", "=", account.email_address)
        .executeTakeFirst();
      if (taken) return { kind: "email-taken" };
      if (account.parent_sid) {
        const lineage = await readLineage(trx, { sid: account.parent_sid });
        if (lineage.length === 0) return { kind: "parent-missing" };
        const blocked = lineage.find((ancestor) =>
          checks.activeLineage ? ancestor.status !== "active" : ancestor.status === "closed",
        );
        if (blocked) return { kind: "ancestor-inactive", ancestor: blocked };
        const cap = checks.descendantLimit;
        // The topmost limited ancestor: its subtree contains every lower one's.
        const limited = cap && lineage.filter((ancestor) => ancestor.role !== cap.exemptRole).at(-1);
        if (cap && limited && (await countBelow(trx, limited.sid, cap.limit)) >= cap.limit) {
          return { kind: "limit-reached", ancestor: limited, limit: cap.limit };
        }
      }
      await trx.insertInto("accounts").values(account).execute();
      return { kind: "created" };
    });
  }

  async updateOpenAccount(sid: string, patch: AccountPatch): Promise<boolean> {
    if (patch.status !== "closed") return patchOpenAccount(this.db, sid, patch);
    return this.serialiseAccountChange(async (trx) => {
      if (!(await patchOpenAccount(trx, sid, patch))) return false;
      // One statement for the whole subtree, whatever its depth or width.
      await sql`
        with recursive below(sid) as (
          select sid from accounts where parent_sid = ${sid}
          union all
          select a.sid from accounts a join below b on a.parent_sid = b.sid
        )
        update accounts set status = 'closed', date_updated = ${patch.date_updated ?? Date.now()}
        where status <> 'closed' and sid in (select sid from below)`.execute(trx);
      return true;
    });
  }

  /**
   * One account-tree change at a time per process, then the dialect's lock across processes: ten
   * creates at once must not hold ten pooled connections waiting on the advisory lock while accepts
   * wait for a connection.
   */
  private serialiseAccountChange<T>(work: (trx: Kysely<Database>) => Promise<T>): Promise<T> {
    const run = this.accountChanges.then(() => this.dialect.accountsTransaction(this.db, work));
    this.accountChanges = run.catch(() => {});
    return run;
  }

  // ---- email messages ----

  async acceptEmail(message: NewEmailMessage, lease: Lease | null = null, extras = NO_EXTRAS): Promise<void> {
    await this.acceptWrites.add({ accepted: { message, lease, tags: extras.tags, blobs: extras.blobs } });
  }

  /**
   * Many messages as one write of the group commit: they are in one transaction whatever else joins
   * it, with the answer of their Idempotency-Key, if any. A lost claim fails only this write: the
   * group commit retries the batch's writes one by one (isolate), so its neighbours still commit.
   */
  async acceptEmails(accepted: AcceptedEmail[], answer?: IdempotentAnswer): Promise<void> {
    await this.acceptWrites.add({ acceptedMany: accepted, answer });
  }

  claimIdempotencyKey(claim: IdempotencyClaimRequest): Promise<IdempotencyClaim> {
    return idempotency.claimIdempotencyKey(this.db, claim);
  }

  releaseIdempotencyKey(accountSid: string, key: string, token: string): Promise<void> {
    return idempotency.releaseIdempotencyKey(this.db, accountSid, key, token);
  }

  purgeIdempotencyKeys(now: number, limit: number): Promise<number> {
    return idempotency.purgeIdempotencyKeys(this.db, now, limit);
  }

  async releaseUnansweredIdempotencyKeys(): Promise<number> {
    const result = await this.db
      .deleteFrom("idempotency_keys")
      .where("response_status", "is", null)
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  /**
   * One group commit: the accepted messages, the attempt records and (SQLite) the webhook attempt
   * records, in one transaction.
   */
  private async commitWrites(batch: PendingWrite[]): Promise<WriteResult[]> {
    const accepted: AcceptedEmail[] = [];
    const records: AttemptRecord[] = [];
    const hookRecords: WebhookAttemptRecord[] = [];
    const answers: IdempotentAnswer[] = [];
    for (const write of batch) {
      if ("accepted" in write) accepted.push(write.accepted);
      else if ("acceptedMany" in write) {
        accepted.push(...write.acceptedMany);
        if (write.answer) answers.push(write.answer);
      } else if ("record" in write) records.push(write.record);
      else hookRecords.push(...write.webhookRecords);
    }
    let owned: Set<AttemptRecord>;
    let hookResults: WebhookAttemptResult[] = [];
    try {
      const handOff = this.handOffs.current;
      if (handOff) handOff.leaseExpiresAt = Date.now() + this.handOffs.leaseMs;
      const outcome = await this.dialect.writeBatch(this.db, accepted, records, {
        handOff,
        answers,
        alongside:
          hookRecords.length === 0
            ? undefined
            : async (conn) => {
                hookResults = await recordWebhookAttemptsIn(conn, this.dialect.name, hookRecords);
              },
      });
      owned = outcome.owned;
      this.announceJobs(handOff, outcome);
    } catch (error) {
      if (isStoreFull(error)) this.diskFull = error;
      throw error;
    }
    this.diskFull = undefined;
    let next = 0;
    return batch.map((write) => {
      if ("accepted" in write || "acceptedMany" in write) return true;
      if ("record" in write) return owned.has(write.record);
      next += write.webhookRecords.length;
      return hookResults.slice(next - write.webhookRecords.length, next);
    });
  }

  /** Tells the sender what a committed batch queued, and takes what it handed over from its room. */
  private announceJobs(handOff: WebhookHandOff | undefined, outcome: BatchOutcome): void {
    const handed = outcome.handed ?? [];
    const returned = outcome.returned ?? {};
    if (handOff) {
      for (const job of handed) {
        const sid = job.webhook_sid as string;
        handOff.room.set(sid, (handOff.room.get(sid) ?? 1) - 1);
      }
      for (const [sid, unused] of Object.entries(returned)) {
        handOff.room.set(sid, (handOff.room.get(sid) ?? unused) - unused);
      }
      for (const [sid, left] of handOff.room) if (left <= 0) handOff.room.delete(sid);
    }
    if (!outcome.jobsQueued && handed.length === 0) return;
    const announced = { handed, queued: outcome.jobsQueued, returned, waiting: outcome.waiting };
    for (const listener of this.jobListeners) listener(announced);
  }

  async cancelEmail(sid: string, now: number): Promise<boolean> {
    return this.announceScheduleChange(await cancelUnleased(this.db, sid, now));
  }

  async rescheduleEmail(sid: string, sendAt: number, now: number): Promise<boolean> {
    return this.announceScheduleChange(await rescheduleUnleased(this.db, sid, sendAt, now));
  }

  /** Tells the webhook sender of the jobs a committed cancel or reschedule queued. */
  private announceScheduleChange(change: ScheduleChange): boolean {
    if (change === undefined) return false;
    if (change.webhookSids.length > 0 || change.callbacks) {
      const announced = { handed: [], queued: true, returned: {}, waiting: change };
      for (const listener of this.jobListeners) listener(announced);
    }
    return true;
  }

  async findEmail(accountSid: string, sid: string): Promise<EmailMessageView | undefined> {
    const row = await this.emailViews()
      .where("email_messages.sid", "=", sid)
      .where("email_messages.account_sid", "=", accountSid)
      .executeTakeFirst();
    return row && toView(row, Date.now());
  }

  async listEmails(filter: EmailFilter, offset: number, limit: number): Promise<Page<EmailMessageView>> {
    const now = Date.now();
    const matching = <Q extends WhereInterface<Database, "email_messages" | "delivery_queue">>(
      query: Q,
    ): Q => {
      let q = query.where("email_messages.account_sid", "=", filter.accountSid) as Q;
      if (filter.to !== undefined)
        q = q.where(sql<boolean>`lower(to_addresses) like ${containsPattern(filter.to)} escape '\\'`) as Q;
      if (filter.from !== undefined)
        q = q.where(sql<boolean>`lower(from_address) like ${containsPattern(filter.from)} escape '\\'`) as Q;
      if (filter.status === "queued" || filter.status === "sending" || filter.status === "scheduled") {
        // Not final yet: the lease tells queued from sending, the due time scheduled from queued (toView).
        q = q.where("email_messages.status", "in", UNFINISHED) as Q;
        q = q.where("delivery_queue.lease_owner", filter.status === "sending" ? "is not" : "is", null) as Q;
        if (filter.status === "scheduled") {
          q = q
            .where("email_messages.status", "=", "scheduled")
            .where("delivery_queue.due_at", ">", now) as Q;
        } else if (filter.status === "queued") {
          q = q.where((eb) =>
            eb.or([eb("email_messages.status", "!=", "scheduled"), eb("delivery_queue.due_at", "<=", now)]),
          ) as Q;
        }
      } else if (filter.status !== undefined) q = q.where("email_messages.status", "=", filter.status) as Q;
      for (const [name, value] of filter.tags ?? []) {
        q = q.where(({ exists, selectFrom }) =>
          exists(
            selectFrom("email_tags")
              .select("email_tags.message_sid")
              .whereRef("email_tags.message_sid", "=", "email_messages.sid")
              .where("email_tags.account_sid", "=", filter.accountSid)
              .where("email_tags.name", "=", name)
              .where("email_tags.value", "=", value),
          ),
        ) as Q;
      }
      if (filter.createdFrom !== undefined)
        q = q.where("email_messages.date_created", ">=", filter.createdFrom) as Q;
      if (filter.createdBefore !== undefined)
        q = q.where("email_messages.date_created", "<", filter.createdBefore) as Q;
      return q;
    };
    const [count, rows] = await Promise.all([
      matching(this.withQueueRow())
        .select((eb) => eb.fn.countAll<number | string>().as("n"))
        .executeTakeFirstOrThrow(),
      matching(this.emailViews())
        .orderBy("email_messages.date_created", "desc")
        .orderBy("email_messages.sid", "desc")
        .offset(offset)
        .limit(limit)
        .execute(),
    ]);
    return { rows: rows.map((row) => toView(row, now)), total: Number(count.n) };
  }

  /** Messages with their queue row, if any (a message leaves the queue once it is final). */
  private withQueueRow() {
    return this.db
      .selectFrom("email_messages")
      .leftJoin("delivery_queue", "delivery_queue.message_sid", "email_messages.sid");
  }

  /** Messages with the due time and lease holder of their queue row. */
  private emailViews() {
    return this.withQueueRow()
      .selectAll("email_messages")
      .select(["delivery_queue.due_at as next_attempt_at", "delivery_queue.lease_owner"]);
  }

  // ---- delivery ----

  async claimDue(owner: string, now: number, leaseMs: number, limit: number): Promise<EmailMessageRow[]> {
    const silentBefore = this.heartbeat ? now - this.heartbeat.timeoutMs : null;
    const sids = await this.dialect.claimDue(
      this.db,
      "delivery_queue",
      owner,
      now,
      leaseMs,
      limit,
      silentBefore,
    );
    if (sids.length === 0) return [];
    const rows = await this.db.selectFrom("email_messages").selectAll().where("sid", "in", sids).execute();
    return rows.map((row) => ({ ...row, status: "sending" }));
  }

  /**
   * The earliest due time of a message waiting in the queue unleased, or null if none waits. Leased
   * messages do not count: their holders settle them, and one whose holder died is found by the
   * worker's regular look at the queue (every poll interval) once its lease has run out. This keeps
   * the query on the due_at index, however long the queue (the minimum over lease expiries too was a
   * scan of the whole queue, and with 100,000 queued it slowed accepting on PostgreSQL).
   */
  async nextDueAt(): Promise<number | null> {
    const row = await this.db
      .selectFrom("delivery_queue")
      .select("due_at")
      .where("lease_owner", "is", null)
      .orderBy("due_at")
      .limit(1)
      .executeTakeFirst();
    return row ? Number(row.due_at) : null;
  }

  /**
   * One statement for /metrics: the queue's length and earliest due time, and the webhook backlog.
   * The counts scan the queue tables, which hold only what is still to deliver; run once per scrape.
   */
  async queueStats(): Promise<QueueStats> {
    const row = await this.db
      .selectNoFrom((eb) => [
        eb
          .selectFrom("delivery_queue")
          .select((q) => q.fn.countAll().as("n"))
          .as("depth"),
        eb
          .selectFrom("delivery_queue")
          .select((q) => q.fn.min("due_at").as("d"))
          .as("oldest_due_at"),
        eb
          .selectFrom("webhook_queue")
          .select((q) => q.fn.countAll().as("n"))
          .as("webhook_backlog"),
      ])
      .executeTakeFirstOrThrow();
    return {
      depth: Number(row.depth ?? 0),
      oldestDueAt: row.oldest_due_at === null ? null : Number(row.oldest_due_at),
      webhookBacklog: Number(row.webhook_backlog ?? 0),
    };
  }

  /**
   * Records an attempt with the message's new state and its queue row, committed together. Attempts
   * finishing together share one transaction (see group-commit.ts), as accepts do. Resolves false when
   * the worker no longer held the lease (another one took the message over): the attempt is kept as
   * history, but the message's state is the new owner's to decide.
   */
  recordAttempt(record: AttemptRecord): Promise<boolean> {
    return this.attemptWrites.add({ record }) as Promise<boolean>;
  }

  /** Gives back leases this process holds, so other processes (or the next start) deliver at once. */
  async releaseLeases(
    owner: string,
    sids: readonly string[],
    queue: QueueTable = "delivery_queue",
  ): Promise<void> {
    if (sids.length === 0) return;
    // Only what is still ours: a message whose lease ran out may be in another process's hands now.
    // Its status reads queued again as soon as no lease is held (see toView).
    await sql`
      update ${sql.table(queue)} set lease_owner = null, lease_expires_at = null
      where lease_owner = ${owner} and ${sql.ref(QUEUE_KEYS[queue])} in (${sql.join(sids)})`.execute(this.db);
  }

  async reclaimLeases(): Promise<number> {
    let reclaimed = 0;
    for (const queue of ["delivery_queue", "webhook_queue"] as const) {
      const result = await this.db
        .updateTable(queue)
        .set({ lease_owner: null, lease_expires_at: null })
        .where("lease_owner", "is not", null)
        .executeTakeFirst();
      reclaimed += Number(result.numUpdatedRows);
    }
    return reclaimed;
  }

  /**
   * The heartbeat runs here, in the store's thread, not beside the deliveries: a main thread busy for
   * a moment (a long GC, a burst of requests) must not look dead to the other processes. Only
   * PostgreSQL has other processes to tell.
   */
  async startHeartbeat(owner: string, timeoutMs: number): Promise<void> {
    if (this.dialect.name !== "postgres" || this.heartbeat) return;
    const beat = async () => {
      const now = Date.now();
      await this.db
        .insertInto("delivery_owners")
        .values({ owner, heartbeat_at: now })
        .onConflict((oc) => oc.column("owner").doUpdateSet({ heartbeat_at: now }))
        .execute();
    };
    await beat();
    // Rows of owners gone for a day are left by crashes; nobody else removes them.
    await this.db
      .deleteFrom("delivery_owners")
      .where("heartbeat_at", "<", Date.now() - 86_400_000)
      .execute();
    const timer = setInterval(() => {
      // A failed beat is retried at the next one; missing several is what makes others take over.
      beat().catch(() => {});
    }, timeoutMs / 3);
    timer.unref();
    this.heartbeat = { owner, timeoutMs, timer };
  }

  async stopHeartbeat(owner: string): Promise<void> {
    if (this.heartbeat?.owner !== owner) return;
    clearInterval(this.heartbeat.timer);
    this.heartbeat = undefined;
    await this.db.deleteFrom("delivery_owners").where("owner", "=", owner).execute();
  }

  /** Extends leases this process still holds, so a long delivery is not claimed again meanwhile. */
  async renewLeases(
    owner: string,
    sids: readonly string[],
    expiresAt: number,
    queue: QueueTable = "delivery_queue",
  ): Promise<void> {
    if (sids.length === 0) return;
    await this.dialect.renewLeases(this.db, queue, owner, sids, expiresAt);
  }

  // ---- webhook deliveries (src/store/webhook-jobs.ts) ----

  claimWebhookJobs(
    owner: string,
    now: number,
    leaseMs: number,
    limit: number,
    skip?: WebhookTargets,
  ): Promise<WebhookJob[]> {
    const silentBefore = this.heartbeat ? now - this.heartbeat.timeoutMs : null;
    return claimWebhookJobs(this.db, this.dialect, { owner, now, leaseMs, limit, silentBefore, skip });
  }

  nextWebhookDueAt(skip?: WebhookTargets): Promise<number | null> {
    return nextWebhookDueAt(this.db, skip);
  }

  /**
   * On SQLite (one writer), through the group commit: webhook attempts finishing while messages are
   * accepted or delivered share their commit, one fsync for both. On PostgreSQL, a transaction of
   * their own beside the others (an accept is not held up behind a batch's round trips).
   */
  recordWebhookAttempts(records: readonly WebhookAttemptRecord[]): Promise<WebhookAttemptResult[]> {
    if (records.length === 0) return Promise.resolve([]);
    if (this.dialect.acceptLanes > 1) return recordWebhookAttempts(this.db, this.dialect.name, records);
    return this.acceptWrites.add({ webhookRecords: records }) as Promise<WebhookAttemptResult[]>;
  }

  async listAttempts(messageSid: string): Promise<EmailAttemptRow[]> {
    return this.db
      .selectFrom("email_attempts")
      .selectAll()
      .where("message_sid", "=", messageSid)
      .orderBy("attempt")
      .execute();
  }

  async findRetryContexts(messageSids: readonly string[]): Promise<Map<string, RetryContext>> {
    const contexts = new Map<string, RetryContext>();
    for (const sid of messageSids) contexts.set(sid, { attempts: [], mime: undefined });
    if (messageSids.length === 0) return contexts;
    const [attempts, mimes] = await Promise.all([
      this.db
        .selectFrom("email_attempts")
        .selectAll()
        .where("message_sid", "in", messageSids)
        .orderBy("message_sid")
        .orderBy("attempt")
        .execute(),
      this.db
        .selectFrom("email_mime")
        .select(["message_sid", "raw"])
        .where("message_sid", "in", messageSids)
        .execute(),
    ]);
    for (const attempt of attempts) contexts.get(attempt.message_sid)?.attempts.push(attempt);
    for (const { message_sid, raw } of mimes) {
      const context = contexts.get(message_sid);
      if (context) context.mime = raw;
    }
    return contexts;
  }

  async findBlobs(sha256s: readonly string[]): Promise<Map<string, Uint8Array>> {
    const blobs = new Map<string, Uint8Array>();
    if (sha256s.length === 0) return blobs;
    const rows = await this.db
      .selectFrom("attachment_blobs")
      .select(["sha256", "content"])
      .where("sha256", "in", [...new Set(sha256s)])
      .execute();
    for (const row of rows) blobs.set(row.sha256, row.content);
    return blobs;
  }

  // ---- Restcomm Notifications and Usage Records (restcomm-reads.ts) ----

  listNotifications(
    filter: NotificationFilter,
    offset: number,
    limit: number,
  ): Promise<Page<NotificationRow>> {
    return listNotifications(this.db, filter, offset, limit);
  }

  findNotification(accountSid: string, sid: string): Promise<NotificationRow | undefined> {
    return findNotification(this.db, accountSid, sid);
  }

  usageByDay(query: UsageQuery): Promise<UsageDayCount[]> {
    return usageByDay(this.db, query);
  }

  async findMime(messageSid: string): Promise<string | undefined> {
    const row = await this.db
      .selectFrom("email_mime")
      .select("raw")
      .where("message_sid", "=", messageSid)
      .executeTakeFirst();
    return row?.raw;
  }

  // ---- webhooks, events and their deliveries (the queries are in hooks-queries.ts) ----

  insertWebhook(webhook: NewWebhook, limit: number): Promise<boolean> {
    return hooks.insertWebhook(this.db, this.dialect, webhook, limit);
  }

  findWebhook(accountSid: string, sid: string): Promise<WebhookRow | undefined> {
    return hooks.findWebhook(this.db, accountSid, sid);
  }

  listWebhooks(accountSid: string, offset: number, limit: number): Promise<Page<WebhookRow>> {
    return hooks.listWebhooks(this.db, accountSid, offset, limit);
  }

  updateWebhook(
    accountSid: string,
    sid: string,
    patch: WebhookPatch,
    reenable: boolean,
  ): Promise<WebhookRow | undefined> {
    return hooks.updateWebhook(this.db, accountSid, sid, patch, reenable);
  }

  deleteWebhook(accountSid: string, sid: string): Promise<boolean> {
    return hooks.deleteWebhook(this.db, accountSid, sid);
  }

  insertDomain(domain: DomainRow, limit: number): Promise<InsertDomainOutcome> {
    return domains.insertDomain(this.db, this.dialect, domain, limit);
  }

  findDomain(accountSid: string, sid: string): Promise<DomainRow | undefined> {
    return domains.findDomain(this.db, accountSid, sid);
  }

  listDomains(accountSid: string, offset: number, limit: number): Promise<Page<DomainRow>> {
    return domains.listDomains(this.db, accountSid, offset, limit);
  }

  updateDomain(
    accountSid: string,
    sid: string,
    patch: DomainPatch,
    notification?: NotificationRow,
  ): Promise<DomainRow | undefined> {
    return domains.updateDomain(this.db, accountSid, sid, patch, notification);
  }

  deleteDomain(accountSid: string, sid: string): Promise<boolean> {
    return domains.deleteDomain(this.db, accountSid, sid);
  }

  listSigningDomains(): Promise<SigningDomainRow[]> {
    return domains.listSigningDomains(this.db);
  }

  claimDomainChecks(now: number, nextCheckAt: number, limit: number): Promise<DomainRow[]> {
    return domains.claimDomainChecks(this.db, now, nextCheckAt, limit);
  }

  listEvents(filter: EventFilter, offset: number, limit: number, order: "asc" | "desc") {
    return hooks.listEvents(this.db, filter, offset, limit, order);
  }

  findEvent(accountSid: string, sid: string) {
    return hooks.findEvent(this.db, accountSid, sid);
  }

  listWebhookDeliveries(accountSid: string, webhookSid: string, offset: number, limit: number) {
    return hooks.listDeliveries(this.db, accountSid, webhookSid, offset, limit);
  }

  findWebhookDelivery(accountSid: string, webhookSid: string, sid: string) {
    return hooks.findDelivery(this.db, accountSid, webhookSid, sid);
  }

  enqueueWebhookJobs(jobs: readonly NewWebhookJob[]): Promise<void> {
    return hooks.enqueueWebhookJobs(this.db, jobs);
  }

  replayEventRange(range: ReplayRange, now: number) {
    return hooks.replayEventRange(this.db, range, now);
  }

  // ---- retention, purge and erasure (lifecycle-queries.ts) ----

  purgeBatch(request: lifecycle.PurgeBatchRequest): Promise<lifecycle.PurgeBatchResult> {
    return lifecycle.purgeBatch(this.db, request);
  }

  countPurgeable(
    cutoffs: Record<lifecycle.PurgeKind, lifecycle.PurgeCutoffs>,
  ): Promise<lifecycle.PurgeCounts> {
    return lifecycle.countPurgeable(this.db, cutoffs);
  }

  async giveSpaceBack(maxPages: number): Promise<number> {
    return (await this.dialect.giveSpaceBack?.(this.db, maxPages)) ?? 0;
  }

  eraseAddress(request: lifecycle.ErasureRequest): Promise<lifecycle.ErasureResult> {
    return lifecycle.eraseAddress(this.db, request);
  }

  claimSecretKeyCheck(name: string, candidate: string, now: number): Promise<string> {
    return hooks.claimSecretKeyCheck(this.db, name, candidate, now);
  }

  // ---- email templates (the queries are in template-queries.ts) ----

  insertTemplate(template: NewTemplate, limit: number): Promise<TemplateWrite<true | "limit">> {
    return templates.insertTemplate(this.db, this.dialect, template, limit);
  }

  findTemplate(accountSids: readonly string[], sid: string): Promise<TemplateRow | undefined> {
    return templates.findTemplate(this.db, accountSids, sid);
  }

  findTemplateByName(accountSids: readonly string[], name: string): Promise<TemplateRow | undefined> {
    return templates.findTemplateByName(this.db, accountSids, name);
  }

  listTemplates(accountSids: readonly string[], offset: number, limit: number): Promise<Page<TemplateRow>> {
    return templates.listTemplates(this.db, accountSids, offset, limit);
  }

  updateTemplate(accountSid: string, sid: string, patch: TemplatePatch, now: number) {
    return templates.updateTemplate(this.db, this.dialect, accountSid, sid, patch, now);
  }

  deleteTemplate(accountSid: string, sid: string): Promise<boolean> {
    return templates.deleteTemplate(this.db, accountSid, sid);
  }
}

/**
 * What ping writes to learn whether the disk has room again: a row about the size of a message with
 * a small attachment, deleted in the same transaction (SQLite still writes its pages to the log).
 */
const WRITE_PROBE = "mailroom-write-probe";
const WRITE_PROBE_BYTES = new Uint8Array(64 * 1024);

/**
 * What the group commit writes: an accepted message, a delivery attempt's record, or (SQLite) a batch
 * of webhook attempt records.
 */
type PendingWrite =
  | { accepted: AcceptedEmail }
  | { acceptedMany: AcceptedEmail[]; answer: IdempotentAnswer | undefined }
  | { record: AttemptRecord }
  | { webhookRecords: readonly WebhookAttemptRecord[] };

/** What the group commit says of each write, in the same order (see commitWrites). */
type WriteResult = boolean | WebhookAttemptResult[];

/**
 * Statuses of a message still in the queue; `sending` is stored only by versions before 0.2,
 * `scheduled` by an accept with SendAt (until its first attempt writes the row).
 */
const UNFINISHED = ["queued", "sending", "scheduled"];

/**
 * A message still in the queue is `sending` while a worker holds its lease and `queued` otherwise.
 * Deriving it from the lease saves writing the message row when a worker claims it and again when
 * a lease is released; only the attempt's outcome writes the row. A message stored `scheduled`
 * reads `scheduled` until its due time and `queued` from then on (waiting for a worker's claim):
 * the time passing writes nothing either.
 */
function toView(
  row: EmailMessageRow & { next_attempt_at: number | null; lease_owner: string | null },
  now: number,
) {
  const { lease_owner, ...view } = row;
  if (UNFINISHED.includes(view.status)) {
    const waiting = view.status === "scheduled" && (view.next_attempt_at ?? 0) > now ? "scheduled" : "queued";
    view.status = lease_owner === null ? waiting : "sending";
  }
  return view;
}

// ---- account queries run both inside and outside the account-tree transaction ----

/** Deeper than any real lineage; bounds the walk should the data ever hold a cycle. */
const MAX_LINEAGE_DEPTH = 100;

/** The account named by `key` and its ancestors, nearest first, in one query. */
async function readLineage(db: Kysely<Database>, key: AccountKey): Promise<AccountRow[]> {
  const start = "sid" in key ? sql`sid = ${key.sid}` : sql`email_address = ${key.email.toLowerCase()}`;
  const { rows } = await sql<AccountRow & { depth: number }>`
    with recursive lineage as (
      select accounts.*, 0 as depth from accounts where ${start}
      union all
      select parent.*, lineage.depth + 1 from accounts parent
      join lineage on parent.sid = lineage.parent_sid
      where lineage.depth < ${MAX_LINEAGE_DEPTH}
    )
    select * from lineage order by depth`.execute(db);
  return rows.map(({ depth: _depth, ...account }) => account);
}

/** How many accounts are below `sid` (all levels), counting no further than `upTo`. */
async function countBelow(db: Kysely<Database>, sid: string, upTo: number): Promise<number> {
  const { rows } = await sql<{ n: number | string }>`
    with recursive below(sid) as (
      select sid from accounts where parent_sid = ${sid}
      union all
      select a.sid from accounts a join below b on a.parent_sid = b.sid
    )
    select count(*) as n from (select sid from below limit ${upTo}) counted`.execute(db);
  return Number(rows[0]?.n ?? 0);
}

/** Applies `patch` unless the account is closed (closed is final, even against a racing update). */
async function patchOpenAccount(db: Kysely<Database>, sid: string, patch: AccountPatch): Promise<boolean> {
  const result = await db
    .updateTable("accounts")
    .set(patch)
    .where("sid", "=", sid)
    .where("status", "!=", "closed")
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}
