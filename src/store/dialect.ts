import type { Kysely, RawBuilder } from "kysely";
import type { Database } from "./schema.js";
import type { AcceptedEmail, AttemptRecord, IdempotentAnswer, WebhookHandOff } from "./types.js";
import type { WebhookJob } from "./webhook-jobs.js";

/** What a group commit's batch did: the records whose messages it settled, and whether it queued webhook jobs. */
export interface BatchOutcome {
  owned: Set<AttemptRecord>;
  /**
   * True when it put rows in webhook_queue for claims (the webhook sender is told:
   * MailStore.listenWebhookJobs).
   */
  jobsQueued: boolean;
  /** Jobs it inserted leased to the sender (WebhookHandOff), with what sending them needs. */
  handed?: WebhookJob[];
  /** Room per webhook it did not use because that webhook has jobs waiting for claims. */
  returned?: Record<string, number>;
  /**
   * Whom the jobs left for claims are for: webhook SIDs, and whether there are StatusCallbacks
   * (SQLite; undefined: not said).
   */
  waiting?: { webhookSids: string[]; callbacks: boolean };
}

/**
 * The tables of leased jobs: messages to deliver, and webhook deliveries (and StatusCallbacks) to make.
 * Both are claimed, renewed and taken over the same way; only their key column differs.
 */
export type QueueTable = "delivery_queue" | "webhook_queue";

/** Each queue's key column: the message SID, or the job's own SID. */
export const QUEUE_KEYS = { delivery_queue: "message_sid", webhook_queue: "sid" } as const;

/**
 * The order in which each queue's due rows are claimed, as its index gives it: delivery_queue's index
 * is on due_at alone; webhook_queue's on (due_at, sid), so webhook jobs due together go in SID order
 * (SIDs are time-ordered: event order).
 */
export const QUEUE_ORDER = { delivery_queue: ["due_at"], webhook_queue: ["due_at", "sid"] } as const;

/**
 * The dialect-specific pieces (how due messages are claimed, how other processes are woken).
 * Everything else is one set of Kysely queries shared by SQLite and PostgreSQL.
 */
export interface StoreDialect {
  readonly name: "sqlite" | "postgres";
  /**
   * Leases up to `limit` due entries of `queue` to `owner` (a message's then reads `sending`), in
   * QUEUE_ORDER, and returns their keys. Entries leased to an owner whose
   * last heartbeat is older than `silentBefore` count as free (when given: PostgreSQL; see
   * MailStore.startHeartbeat).
   */
  claimDue(
    db: Kysely<Database>,
    queue: QueueTable,
    owner: string,
    now: number,
    leaseMs: number,
    limit: number,
    silentBefore: number | null,
    /** A further condition on the rows claimed (the webhook sender skips targets it has enough of). */
    filter?: RawBuilder<boolean>,
  ): Promise<string[]>;
  /**
   * Writes one group commit's batch in one transaction: the accepted messages with their queue rows
   * (leased when the accept carried a lease), and the delivery attempts with their messages' new state.
   * A message's state and queue row change only while the attempt's owner still holds its lease: a
   * worker that stalled past its lease must not undo the claim of the one that took over, which
   * decides the message's state itself. Returns the records whose messages it settled. Other
   * processes are woken once it is committed (the notification is part of the commit: one sent after
   * it could fail and turn a stored message into an error reply, and a duplicate when retried).
   */
  writeBatch(
    db: Kysely<Database>,
    accepted: AcceptedEmail[],
    records: AttemptRecord[],
    options?: {
      /**
       * More writes for the same transaction (SQLite only: webhook attempt records, see
       * Store.recordWebhookAttempts), run after the batch's own on the connection it holds.
       */
      alongside?: ((conn: Kysely<Database>) => Promise<void>) | undefined;
      /** The webhook sender's room for jobs handed over at write time (SQLite only). */
      handOff?: WebhookHandOff | undefined;
      /**
       * Answers to store on claimed Idempotency-Keys in the same transaction; a claim no longer held
       * fails the whole batch with IDEMPOTENCY_CLAIM_LOST (the group commit then retries each alone).
       */
      answers?: IdempotentAnswer[] | undefined;
    },
  ): Promise<BatchOutcome>;
  /**
   * How many accept transactions may be in flight at once (GroupCommitOptions.lanes). One means a
   * single writer (SQLite): accepts and attempt records then share one group commit. More means
   * writers run side by side on separate connections (PostgreSQL), and attempt records get a group
   * commit of their own beside the accepts'.
   */
  readonly acceptLanes: number;
  /** Extends the leases `owner` holds on these rows of `queue`. */
  renewLeases(
    db: Kysely<Database>,
    queue: QueueTable,
    owner: string,
    sids: readonly string[],
    expiresAt: number,
  ): Promise<void>;
  /** Calls `listener` when another process queued work; returns a function that stops listening. */
  listenQueued(listener: () => void): Promise<() => Promise<void>>;
  /**
   * Runs `work` in a transaction that no other account-tree change runs beside, in this process or
   * any other on the same database: creating an account below a lineage and closing a lineage
   * serialise, so a create either commits before a close (and is closed by its cascade) or sees the
   * closed ancestor. SQLite: BEGIN IMMEDIATE (the file's write lock); PostgreSQL: a transaction-scoped
   * advisory lock of this installation (its schema). Account changes are rare; nothing hot waits on it.
   */
  accountsTransaction<T>(db: Kysely<Database>, work: (trx: Kysely<Database>) => Promise<T>): Promise<T>;
  /** Runs the migrations so that processes starting at once on one database apply each exactly once. */
  migrate(db: Kysely<Database>): Promise<void>;
  /**
   * Gives up to `maxPages` free pages back to the file system and returns how many it gave (SQLite's
   * incremental vacuum, after purge batches: src/store/sqlite-vacuum.ts). Absent: nothing to do.
   */
  giveSpaceBack?(db: Kysely<Database>, maxPages: number): Promise<number>;
  close(): Promise<void>;
}
