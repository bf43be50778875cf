import type { Database as Connection, Statement } from "better-sqlite3";
import { acceptedEvent, attemptChanges, type EventRow, UsageTally } from "./change-rows.js";
import type { BatchOutcome } from "./dialect.js";
import {
  ATTEMPT_COLUMNS,
  BLOB_COLUMNS,
  columnValue,
  EVENT_COLUMNS,
  MESSAGE_COLUMNS,
  NOTIFICATION_COLUMNS,
  TAG_COLUMNS,
} from "./schema.js";
import type { AcceptedEmail, AttemptRecord } from "./types.js";

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
  private readonly inTransaction;

  constructor(private readonly connection: Connection) {
    this.inTransaction = connection.transaction((accepted: AcceptedEmail[], records: AttemptRecord[]) =>
      this.apply(accepted, records),
    );
  }

  /**
   * Writes the batch in one transaction and returns the attempt records whose messages it settled
   * (those whose owner still held the lease; StoreDialect.writeBatch in store.ts says why only those).
   */
  write(accepted: AcceptedEmail[], records: AttemptRecord[]): BatchOutcome {
    // IMMEDIATE: take the write lock at BEGIN, as a writer should (the CLI may hold it for a moment).
    return this.inTransaction.immediate(accepted, records);
  }

  private apply(accepted: AcceptedEmail[], records: AttemptRecord[]): BatchOutcome {
    // Prepared on first use: the tables exist only once the migrations have run.
    this.statements ??= prepare(this.connection);
    const s = this.statements;
    const usage = new UsageTally();
    let jobs = 0;
    // Whether an account has an enabled webhook, asked once per account and batch: most have none,
    // and their events then cost no lookup each.
    const hooked = new Map<string, boolean>();
    const hasWebhooks = (account: string) => {
      let known = hooked.get(account);
      if (known === undefined) {
        known = s.hasWebhooks.get(account) !== undefined;
        hooked.set(account, known);
      }
      return known;
    };
    // An event, and a job for each webhook of its account that wants it (webhook_queue), together.
    const recordEvent = (event: EventRow) => {
      s.insertEvent.run(EVENT_COLUMNS.map((column) => columnValue(event, column)));
      if (!hasWebhooks(event.account_sid)) return;
      const at = event.date_created;
      jobs += s.queueWebhookJobs.run(
        event.sid,
        event.sid,
        event.message_sid,
        at,
        at,
        event.account_sid,
        `,${event.type},`,
      ).changes;
    };
    for (const { message, lease, tags, blobs } of accepted) {
      // Bytes that crossed from another thread arrive as a Uint8Array; better-sqlite3 binds Buffers.
      for (const blob of blobs) s.insertBlob.run(blob.sha256, blob.size, asBuffer(blob.content));
      s.insertMessage.run(MESSAGE_COLUMNS.map((column) => columnValue(message, column)));
      for (const tag of tags) s.insertTag.run(TAG_COLUMNS.map((column) => columnValue(tag, column)));
      s.insertQueued.run(message.sid, message.date_created, lease?.owner ?? null, lease?.expiresAt ?? null);
      recordEvent(acceptedEvent(message));
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
          jobs += s.queueStatusCallback.run(finished, finished, sid).changes;
        }
      }
      s.insertAttempt.run(ATTEMPT_COLUMNS.map((column) => columnValue(record.attempt, column)));
    }
    for (const row of usage.rows()) s.addUsage.run(row.account, row.day, row.category, row.count);
    return { owned, jobsQueued: jobs > 0 };
  }
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
    insertEvent: statement(insertAll("email_events", EVENT_COLUMNS)),
    insertNotification: statement(insertAll("notifications", NOTIFICATION_COLUMNS)),
    hasWebhooks: statement("select 1 from webhooks where account_sid = ? and enabled = 1 limit 1"),
    // The last parameter is the event type between commas: `events` lists types separated by commas.
    queueWebhookJobs: statement(
      `insert into webhook_queue (sid, account_sid, webhook_sid, event_sid, message_sid, created_at, due_at)
       select ? || w.sid, w.account_sid, w.sid, ?, ?, ?, ? from webhooks w
       where w.account_sid = ? and w.enabled = 1
         and (w.events is null or instr(',' || w.events || ',', ?) > 0)`,
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
    // The same bytes may already be stored for another message: stored once.
    insertBlob: statement(`${insertAll("attachment_blobs", BLOB_COLUMNS)} on conflict (sha256) do nothing`),
  };
}

/** INSERT of every listed column, values as positional parameters in the list's order. */
function insertAll(table: string, columns: readonly { name: string }[]): string {
  const names = columns.map((column) => column.name).join(", ");
  return `insert into ${table} (${names}) values (${columns.map(() => "?").join(", ")})`;
}
