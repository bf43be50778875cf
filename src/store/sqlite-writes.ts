import type { Database as Connection, Statement } from "better-sqlite3";
import {
  acceptedEvent,
  attemptChanges,
  type EventRow,
  scheduledAtAccept,
  UsageTally,
} from "./change-rows.js";
import type { BatchOutcome } from "./dialect.js";
import { answerParams, claimLost, STORE_ANSWER_SQL } from "./idempotency-keys.js";
import {
  ATTEMPT_COLUMNS,
  BLOB_COLUMNS,
  columnValue,
  EVENT_COLUMNS,
  MESSAGE_COLUMNS,
  NOTIFICATION_COLUMNS,
  TAG_COLUMNS,
} from "./schema.js";
import { insertAttemptRow, insertMessageRow, pushEventRow, RowInserts } from "./sqlite-rows.js";
import type { AcceptedEmail, AttemptRecord, IdempotentAnswer, WebhookHandOff } from "./types.js";
import type { WebhookJob } from "./webhook-jobs.js";

/**
 * The group commit's writes on SQLite (accepted messages, delivery attempts), as statements prepared
 * once and run row by row inside one transaction. SQLite runs in this thread, so a statement per
 * row costs no round trip, and skipping Kysely's query building took about a third of the store
 * thread's CPU per message (docs/performance.md). The PostgreSQL store writes the same rows in one
 * statement per batch, because each statement is a round trip there (postgres-writes.ts); both must
 * keep the same meaning, and the store tests run against both.
 */
export class SqliteWrites {
  private statements: ReturnType<typeof prepare> | undefined;
  private readonly events: RowInserts<EventRow>;
  private readonly inTransaction;

  constructor(private readonly connection: Connection) {
    this.events = new RowInserts(
      (sql) => connection.prepare(sql),
      "email_events",
      EVENT_COLUMNS,
      pushEventRow,
    );
    this.inTransaction = connection.transaction(
      (
        accepted: AcceptedEmail[],
        records: AttemptRecord[],
        handOff: WebhookHandOff | undefined,
        answers: IdempotentAnswer[],
      ) => this.apply(accepted, records, handOff, answers),
    );
  }

  /**
   * Writes the batch in one transaction and returns the attempt records whose messages it settled
   * (those whose owner still held the lease; StoreDialect.writeBatch in store.ts says why only those).
   */
  write(
    accepted: AcceptedEmail[],
    records: AttemptRecord[],
    handOff?: WebhookHandOff,
    answers: IdempotentAnswer[] = [],
  ): BatchOutcome {
    // IMMEDIATE: take the write lock at BEGIN, as a writer should (the CLI may hold it for a moment).
    return this.inTransaction.immediate(accepted, records, handOff, answers);
  }

  private apply(
    accepted: AcceptedEmail[],
    records: AttemptRecord[],
    handOff: WebhookHandOff | undefined,
    answers: IdempotentAnswer[],
  ): BatchOutcome {
    // Prepared on first use: the tables exist only once the migrations have run.
    this.statements ??= prepare(this.connection);
    const s = this.statements;
    // First: a claim taken over fails the batch (rolled back) before anything else is written.
    for (const answer of answers) {
      if (s.storeAnswer.run(answerParams(answer)).changes === 0) throw claimLost(answer);
    }
    const usage = new UsageTally();
    let jobs = 0;
    let callbacks = 0;
    const waitingHooks = new Set<string>();
    const handOffs = new HandOffs(s, handOff);
    // Written together at the end (RowInserts says why): nothing in between reads email_events.
    const events: EventRow[] = [];
    // An account's enabled webhooks, read once per account and batch: most accounts have none, and
    // their events then cost no lookup each.
    const hooksOf = new Map<string, WebhookOfAccount[]>();
    const webhooks = (account: string) => {
      let known = hooksOf.get(account);
      if (known === undefined) {
        known = s.webhooksOf.all(account) as WebhookOfAccount[];
        hooksOf.set(account, known);
      }
      return known;
    };
    // An event, and a job for each webhook of its account that wants it (webhook_queue), together.
    const recordEvent = (event: EventRow) => {
      events.push(event);
      for (const webhook of webhooks(event.account_sid)) {
        if (webhook.events !== null && !`,${webhook.events},`.includes(`,${event.type},`)) continue;
        const at = event.date_created;
        const sid = `${event.sid}${webhook.sid}`;
        const lease = handOffs.take(webhook.sid);
        s.insertWebhookJob.run(
          sid,
          event.account_sid,
          webhook.sid,
          event.sid,
          event.message_sid,
          at,
          at,
          lease?.owner ?? null,
          lease?.leaseExpiresAt ?? null,
        );
        if (lease) handOffs.handed.push(handedJob(sid, event, webhook));
        else {
          jobs += 1;
          waitingHooks.add(webhook.sid);
        }
      }
    };
    for (const { message, lease, tags, blobs } of accepted) {
      // Bytes that crossed from another thread arrive as a Uint8Array; better-sqlite3 binds Buffers.
      for (const blob of blobs) s.insertBlob.run(blob.sha256, blob.size, asBuffer(blob.content));
      insertMessageRow(s.insertMessage, message);
      for (const blob of blobs) s.insertRef.run(blob.sha256, message.sid);
      for (const tag of tags) s.insertTag.run(TAG_COLUMNS.map((column) => columnValue(tag, column)));
      // A scheduled message's row is due at SendAt: no claim takes it earlier (due_at <= now).
      const dueAt = message.send_at ?? message.date_created;
      s.insertQueued.run(message.sid, dueAt, lease?.owner ?? null, lease?.expiresAt ?? null);
      recordEvent(acceptedEvent(message));
      const scheduled = scheduledAtAccept(message);
      if (scheduled) recordEvent(scheduled);
      usage.add(message.account_sid, message.date_created, "email");
    }
    const owned = new Set<AttemptRecord>();
    // No lock order to keep: SQLite has one writer at a time.
    for (const record of records) {
      const sid = record.attempt.message_sid;
      const settled =
        record.retryAt === null
          ? s.deleteLeased.run(sid, record.owner)
          : s.rescheduleLeased.run(record.retryAt, sid, record.owner);
      if (record.mime !== undefined) s.insertMime.run(sid, record.mime);
      if (settled.changes > 0) {
        owned.add(record);
        s.updateMessage.run(
          record.status,
          record.errorCode,
          record.errorMessage,
          record.attempt.date_finished,
          record.dateDelivered,
          sid,
        );
        const changes = attemptChanges(record);
        for (const event of changes.events) recordEvent(event);
        const { notification } = changes;
        if (notification)
          s.insertNotification.run(NOTIFICATION_COLUMNS.map((c) => columnValue(notification, c)));
        if (changes.usage) usage.add(record.attempt.account_sid, record.attempt.date_finished, changes.usage);
        const finished = record.attempt.date_finished;
        // Unless the worker said the message has none (older callers do not say).
        if (record.retryAt === null && record.hasStatusCallback !== false) {
          callbacks += s.queueStatusCallback.run(finished, finished, sid).changes;
        }
      }
      insertAttemptRow(s.insertAttempt, record.attempt);
    }
    this.events.run(events);
    for (const row of usage.rows()) s.addUsage.run(row.account, row.day, row.category, row.count);
    return {
      owned,
      jobsQueued: jobs + callbacks > 0,
      handed: handOffs.handed,
      returned: handOffs.returned,
      waiting: { webhookSids: [...waitingHooks], callbacks: callbacks > 0 },
    };
  }
}

/** An enabled webhook of an account, as its events' jobs need it. */
interface WebhookOfAccount {
  sid: string;
  url: string;
  secret_sealed: string;
  failing_since: number | null;
  events: string | null;
}

/**
 * Which new webhook jobs are handed to the sender (inserted leased to it) rather than left for its
 * claims: those of a webhook it offered room for, while that webhook has no jobs waiting unleased
 * (a new job must not overtake them: claims keep the queue's order). A webhook found with waiting
 * jobs has its room given back, so that the sender's claims may use it.
 */
class HandOffs {
  readonly handed: WebhookJob[] = [];
  readonly returned: Record<string, number> = {};
  /** Per webhook of this batch: the room left, or 0 once it has jobs waiting. */
  private readonly left = new Map<string, number>();

  constructor(
    private readonly s: { webhookHasWaiting: Statement },
    private readonly handOff: WebhookHandOff | undefined,
  ) {}

  /** The lease for a new job of `webhookSid`, or undefined: it is left for claims. */
  take(webhookSid: string): { owner: string; leaseExpiresAt: number } | undefined {
    if (!this.handOff) return undefined;
    let left = this.left.get(webhookSid);
    if (left === undefined) {
      left = this.handOff.room.get(webhookSid) ?? 0;
      if (left > 0 && this.s.webhookHasWaiting.get(webhookSid) !== undefined) {
        this.returned[webhookSid] = left;
        left = 0;
      }
      this.left.set(webhookSid, left);
    }
    // No room left: this job is left unleased, and so are the batch's later ones of this webhook.
    if (left === 0) return undefined;
    this.left.set(webhookSid, left - 1);
    return this.handOff;
  }
}

function handedJob(sid: string, event: EventRow, webhook: WebhookOfAccount): WebhookJob {
  return {
    sid,
    account_sid: event.account_sid,
    webhook_sid: webhook.sid,
    event_sid: event.sid,
    message_sid: event.message_sid,
    callback_url: null,
    attempts: 0,
    created_at: event.date_created,
    due_at: event.date_created,
    webhook: { url: webhook.url, secret_sealed: webhook.secret_sealed, failing_since: webhook.failing_since },
    event: {
      sid: event.sid,
      account_sid: event.account_sid,
      message_sid: event.message_sid,
      type: event.type,
      recipient: event.recipient ?? null,
      date_created: event.date_created,
      smtp_code: event.smtp_code ?? null,
      response: event.response ?? null,
      error_code: event.error_code ?? null,
      error_message: event.error_message ?? null,
      retry_at: event.retry_at ?? null,
    },
    message: null,
  };
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function prepare(connection: Connection) {
  const statement = (sql: string): Statement => connection.prepare(sql);
  return {
    insertMessage: statement(insertAll("email_messages", MESSAGE_COLUMNS)),
    insertQueued: statement(
      "insert into delivery_queue (message_sid, due_at, lease_owner, lease_expires_at) values (?, ?, ?, ?)",
    ),
    deleteLeased: statement("delete from delivery_queue where message_sid = ? and lease_owner = ?"),
    rescheduleLeased: statement(
      `update delivery_queue set due_at = ?, lease_owner = null, lease_expires_at = null
       where message_sid = ? and lease_owner = ?`,
    ),
    insertMime: statement(
      "insert into email_mime (message_sid, raw) values (?, ?) on conflict (message_sid) do nothing",
    ),
    updateMessage: statement(
      `update email_messages set status = ?, error_code = ?, error_message = ?,
         num_attempts = num_attempts + 1, date_updated = ?, date_delivered = ?
       where sid = ?`,
    ),
    insertAttempt: statement(insertAll("email_attempts", ATTEMPT_COLUMNS)),
    insertTag: statement(insertAll("email_tags", TAG_COLUMNS)),
    insertNotification: statement(insertAll("notifications", NOTIFICATION_COLUMNS)),
    webhooksOf: statement(
      `select sid, url, secret_sealed, failing_since, events from webhooks
       where account_sid = ? and enabled = 1 order by sid`,
    ),
    insertWebhookJob: statement(
      `insert into webhook_queue (sid, account_sid, webhook_sid, event_sid, message_sid, created_at, due_at,
         lease_owner, lease_expires_at)
       values (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    // Whether a webhook has jobs waiting for claims (unleased): its new jobs then queue behind them.
    webhookHasWaiting: statement(
      "select 1 from webhook_queue where webhook_sid = ? and lease_owner is null limit 1",
    ),
    queueStatusCallback: statement(
      `insert into webhook_queue (sid, account_sid, message_sid, callback_url, created_at, due_at)
       select m.sid || 'CB', m.account_sid, m.sid, m.status_callback, ?, ? from email_messages m
       where m.sid = ? and m.status_callback is not null
       on conflict (sid) do nothing`,
    ),
    // One writer: shard 0 always (the shards are for PostgreSQL's concurrent writers).
    addUsage: statement(
      `insert into usage_counters (account_sid, day, category, shard, count) values (?, ?, ?, 0, ?)
       on conflict (account_sid, day, category, shard) do update set count = count + excluded.count`,
    ),
    storeAnswer: statement(STORE_ANSWER_SQL),
    // The same bytes may already be stored for another message: stored once.
    insertBlob: statement(`${insertAll("attachment_blobs", BLOB_COLUMNS)} on conflict (sha256) do nothing`),
    // Which message uses which bytes: the purge deletes bytes with their last reference (src/lifecycle/).
    insertRef: statement(
      "insert into attachment_refs (sha256, message_sid) values (?, ?) on conflict do nothing",
    ),
  };
}

/** INSERT of every listed column, values as positional parameters in the list's order. */
function insertAll(table: string, columns: readonly { name: string }[]): string {
  const names = columns.map((column) => column.name).join(", ");
  return `insert into ${table} (${names}) values (${columns.map(() => "?").join(", ")})`;
}
