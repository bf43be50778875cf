import { type Kysely, type Migration, type MigrationProvider, Migrator, PostgresAdapter, sql } from "kysely";
import addressparser from "nodemailer/lib/addressparser";
import type { Mailbox } from "../domain/addresses.js";
import type { EmailContent } from "../model/email-message.js";
import type { Database } from "./schema.js";

/**
 * The schema history, shared by SQLite and PostgreSQL. Only portable column types are used
 * (text, integer, bigint) so one history serves both. Never edit a shipped migration: add one.
 */
const migrations: Record<string, Migration> = {
  "0001_initial": {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable("accounts")
        .addColumn("sid", "text", (c) => c.primaryKey())
        .addColumn("parent_sid", "text", (c) => c.references("accounts.sid"))
        .addColumn("email_address", "text", (c) => c.notNull().unique())
        .addColumn("friendly_name", "text", (c) => c.notNull())
        .addColumn("type", "text", (c) => c.notNull())
        .addColumn("status", "text", (c) => c.notNull())
        .addColumn("role", "text", (c) => c.notNull())
        .addColumn("auth_token_hash", "text", (c) => c.notNull())
        .addColumn("password_hash", "text")
        .addColumn("date_created", "bigint", (c) => c.notNull())
        .addColumn("date_updated", "bigint", (c) => c.notNull())
        .execute();
      await db.schema.createIndex("accounts_parent").on("accounts").column("parent_sid").execute();

      await db.schema
        .createTable("email_messages")
        .addColumn("sid", "text", (c) => c.primaryKey())
        .addColumn("account_sid", "text", (c) => c.notNull().references("accounts.sid"))
        .addColumn("from_address", "text", (c) => c.notNull())
        .addColumn("to_addresses", "text", (c) => c.notNull())
        .addColumn("cc_addresses", "text", (c) => c.notNull())
        .addColumn("bcc_addresses", "text", (c) => c.notNull())
        .addColumn("subject", "text", (c) => c.notNull())
        .addColumn("body", "text", (c) => c.notNull())
        .addColumn("type", "text", (c) => c.notNull())
        .addColumn("status", "text", (c) => c.notNull())
        .addColumn("message_id", "text", (c) => c.notNull())
        .addColumn("status_callback", "text")
        .addColumn("error_code", "integer")
        .addColumn("error_message", "text")
        .addColumn("num_attempts", "integer", (c) => c.notNull().defaultTo(0))
        .addColumn("date_created", "bigint", (c) => c.notNull())
        .addColumn("date_updated", "bigint", (c) => c.notNull())
        .addColumn("date_sent", "bigint", (c) => c.notNull())
        .addColumn("date_delivered", "bigint")
        .execute();
      await db.schema
        .createIndex("email_messages_account_created")
        .on("email_messages")
        .columns(["account_sid", "date_created", "sid"])
        .execute();

      await db.schema
        .createTable("delivery_queue")
        .addColumn("message_sid", "text", (c) => c.primaryKey().references("email_messages.sid"))
        .addColumn("due_at", "bigint", (c) => c.notNull())
        .addColumn("lease_owner", "text")
        .addColumn("lease_expires_at", "bigint")
        .execute();
      await db.schema.createIndex("delivery_queue_due").on("delivery_queue").column("due_at").execute();

      await db.schema
        .createTable("email_attempts")
        .addColumn("sid", "text", (c) => c.primaryKey())
        .addColumn("message_sid", "text", (c) => c.notNull().references("email_messages.sid"))
        .addColumn("account_sid", "text", (c) => c.notNull())
        .addColumn("attempt", "integer", (c) => c.notNull())
        .addColumn("date_started", "bigint", (c) => c.notNull())
        .addColumn("date_finished", "bigint", (c) => c.notNull())
        .addColumn("outcome", "text", (c) => c.notNull())
        .addColumn("smtp_code", "integer")
        .addColumn("response", "text")
        .addColumn("error_code", "integer")
        .addColumn("error_message", "text")
        .addColumn("recipients", "text")
        .execute();
      await db.schema
        .createIndex("email_attempts_message")
        .on("email_attempts")
        .columns(["message_sid", "attempt"])
        .execute();

      await db.schema
        .createTable("email_mime")
        .addColumn("message_sid", "text", (c) => c.primaryKey().references("email_messages.sid"))
        .addColumn("raw", "text", (c) => c.notNull())
        .execute();
    },
  },
  /**
   * The declared message model: a message's content (addresses, subject, headers, tags, attachment
   * references) becomes one JSON document, its texts (Body, Html, Text) columns of their own; tags get a table for the list filter, and
   * attachment bytes a table where each distinct content is stored once. Every existing message is
   * carried over (its CC, BCC, Body and Type move into its content, which reads back the same).
   */
  "0002_message_content": {
    async up(db: Kysely<unknown>) {
      const postgres = db.getExecutor().adapter instanceof PostgresAdapter;
      for (const column of ["content", "body_part", "html_part", "text_part"]) {
        await db.schema.alterTable("email_messages").addColumn(column, "text").execute();
      }
      await db.schema
        .createTable("email_tags")
        .addColumn("message_sid", "text", (c) => c.notNull().references("email_messages.sid"))
        .addColumn("account_sid", "text", (c) => c.notNull())
        .addColumn("name", "text", (c) => c.notNull())
        .addColumn("value", "text", (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex("email_tags_account_tag")
        .on("email_tags")
        .columns(["account_sid", "name", "value", "message_sid"])
        .execute();
      await db.schema.createIndex("email_tags_message").on("email_tags").column("message_sid").execute();
      await db.schema
        .createTable("attachment_blobs")
        .addColumn("sha256", "text", (c) => c.primaryKey())
        .addColumn("size", "bigint", (c) => c.notNull())
        .addColumn("content", postgres ? sql`bytea` : "blob", (c) => c.notNull())
        .execute();
      await carryOverMessages(db as Kysely<LegacyDatabase>);
      for (const column of ["cc_addresses", "bcc_addresses", "body", "type"]) {
        await db.schema.alterTable("email_messages").dropColumn(column).execute();
      }
    },
  },
  /**
   * Heartbeats of the running delivery workers: on PostgreSQL a process that died is recognised by its
   * silence within seconds, and its leases taken over, instead of when they run out (minutes).
   */
  "0003_owner_heartbeats": {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable("delivery_owners")
        .addColumn("owner", "text", (c) => c.primaryKey())
        .addColumn("heartbeat_at", "bigint", (c) => c.notNull())
        .execute();
    },
  },
  /**
   * Indexes for the list filters (issue 12, item 7). Status: by account and status, newest first. To
   * and From match text anywhere in the field, which no B-tree index can look up; on SQLite the
   * account's index carries both fields, so such a filter reads the index (about a hundred bytes a
   * message) instead of every message row with its content. PostgreSQL cannot do the same: an index
   * entry must fit in a third of a page, and a To list may be much longer; there the filter reads the
   * account's rows, and statement_timeout bounds it (docs/operations.md).
   */
  "0004_list_indexes": {
    async up(db: Kysely<unknown>) {
      const postgres = db.getExecutor().adapter instanceof PostgresAdapter;
      await db.schema
        .createIndex("email_messages_account_status")
        .on("email_messages")
        .columns(["account_sid", "status", "date_created", "sid"])
        .execute();
      if (postgres) return;
      await db.schema
        .createIndex("email_messages_account_addresses")
        .on("email_messages")
        .columns(["account_sid", "date_created", "sid", "from_address", "to_addresses"])
        .execute();
      // Its first columns are the new index's: it would only cost every accept a second entry.
      await db.schema.dropIndex("email_messages_account_created").execute();
    },
  },

  /**
   * Issue 13: what happened to messages (events, written in the transaction that changes the
   * message), per-day usage counters, Restcomm Notifications, webhooks and the queue of their
   * deliveries (leased like delivery_queue), and the log of each delivery attempt.
   */
  "0005_events": {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable("email_events")
        .addColumn("sid", "text", (c) => c.primaryKey())
        .addColumn("account_sid", "text", (c) => c.notNull())
        .addColumn("message_sid", "text", (c) => c.notNull())
        .addColumn("type", "text", (c) => c.notNull())
        .addColumn("recipient", "text")
        .addColumn("date_created", "bigint", (c) => c.notNull())
        .addColumn("smtp_code", "integer")
        .addColumn("response", "text")
        .addColumn("error_code", "integer")
        .addColumn("error_message", "text")
        .addColumn("retry_at", "bigint")
        .execute();
      await db.schema
        .createIndex("email_events_message")
        .on("email_events")
        .columns(["message_sid", "sid"])
        .execute();
      await db.schema
        .createIndex("email_events_account")
        .on("email_events")
        .columns(["account_sid", "date_created", "sid"])
        .execute();

      // Several rows per (account, day, category): concurrent transactions add to different shards
      // instead of queueing on one row lock (PostgreSQL); a count is the sum over the shards.
      await db.schema
        .createTable("usage_counters")
        .addColumn("account_sid", "text", (c) => c.notNull())
        .addColumn("day", "text", (c) => c.notNull())
        .addColumn("category", "text", (c) => c.notNull())
        .addColumn("shard", "integer", (c) => c.notNull())
        .addColumn("count", "bigint", (c) => c.notNull())
        .addPrimaryKeyConstraint("usage_counters_pk", ["account_sid", "day", "category", "shard"])
        .execute();

      await db.schema
        .createTable("notifications")
        .addColumn("sid", "text", (c) => c.primaryKey())
        .addColumn("account_sid", "text", (c) => c.notNull())
        .addColumn("date_created", "bigint", (c) => c.notNull())
        .addColumn("log", "integer", (c) => c.notNull())
        .addColumn("error_code", "integer", (c) => c.notNull())
        .addColumn("message_text", "text", (c) => c.notNull())
        .addColumn("message_sid", "text")
        .addColumn("request_url", "text")
        .addColumn("request_method", "text")
        .addColumn("request_variables", "text")
        .addColumn("response_headers", "text")
        .addColumn("response_body", "text")
        .execute();
      await db.schema
        .createIndex("notifications_account")
        .on("notifications")
        .columns(["account_sid", "date_created", "sid"])
        .execute();

      await db.schema
        .createTable("webhooks")
        .addColumn("sid", "text", (c) => c.primaryKey())
        .addColumn("account_sid", "text", (c) => c.notNull().references("accounts.sid"))
        .addColumn("url", "text", (c) => c.notNull())
        // Comma-separated event types; null means every type.
        .addColumn("events", "text")
        .addColumn("enabled", "integer", (c) => c.notNull())
        // The signing secret, encrypted (src/domain/secret-box.ts): it must be read back to sign.
        .addColumn("secret_sealed", "text", (c) => c.notNull())
        // When deliveries started failing without a success since; null while they succeed.
        .addColumn("failing_since", "bigint")
        .addColumn("date_created", "bigint", (c) => c.notNull())
        .addColumn("date_updated", "bigint", (c) => c.notNull())
        .execute();
      await db.schema.createIndex("webhooks_account").on("webhooks").column("account_sid").execute();

      // One row per webhook delivery (or StatusCallback) still to make: leased and claimed like
      // delivery_queue. webhook_sid null is a message's StatusCallback (callback_url).
      await db.schema
        .createTable("webhook_queue")
        .addColumn("sid", "text", (c) => c.primaryKey())
        .addColumn("account_sid", "text", (c) => c.notNull())
        .addColumn("webhook_sid", "text")
        .addColumn("event_sid", "text")
        .addColumn("message_sid", "text")
        .addColumn("callback_url", "text")
        .addColumn("attempts", "integer", (c) => c.notNull().defaultTo(0))
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("due_at", "bigint", (c) => c.notNull())
        .addColumn("lease_owner", "text")
        .addColumn("lease_expires_at", "bigint")
        .execute();
      await db.schema
        .createIndex("webhook_queue_due")
        .on("webhook_queue")
        .columns(["due_at", "sid"])
        .execute();
      await db.schema
        .createIndex("webhook_queue_webhook")
        .on("webhook_queue")
        .column("webhook_sid")
        .execute();

      await db.schema
        .createTable("webhook_deliveries")
        .addColumn("sid", "text", (c) => c.primaryKey())
        .addColumn("account_sid", "text", (c) => c.notNull())
        .addColumn("webhook_sid", "text", (c) => c.notNull())
        .addColumn("event_sid", "text", (c) => c.notNull())
        .addColumn("event_type", "text", (c) => c.notNull())
        .addColumn("message_sid", "text")
        .addColumn("attempt", "integer", (c) => c.notNull())
        .addColumn("date_created", "bigint", (c) => c.notNull())
        .addColumn("status_code", "integer")
        .addColumn("latency_ms", "integer", (c) => c.notNull())
        .addColumn("outcome", "text", (c) => c.notNull())
        .addColumn("error", "text")
        .addColumn("response_body", "text")
        .execute();
      await db.schema
        .createIndex("webhook_deliveries_webhook")
        .on("webhook_deliveries")
        .columns(["webhook_sid", "date_created", "sid"])
        .execute();
    },
  },
  "0006_h13-hooks": {
    async up(db: Kysely<unknown>) {
      // A value sealed with the installation's secret key (src/services/secret-key.ts): a process
      // whose key cannot open it refuses to start, instead of sealing secrets others cannot read.
      await db.schema
        .createTable("secret_key_checks")
        .addColumn("name", "text", (c) => c.primaryKey())
        .addColumn("sealed", "text", (c) => c.notNull())
        .addColumn("date_created", "bigint", (c) => c.notNull())
        .execute();
    },
  },
  "0007_idempotency": {
    async up(db: Kysely<unknown>) {
      // Idempotency-Key (issue 14): a key is claimed in a small write of its own (locked_until set),
      // and the accept's transaction stores the answer on it (src/store/idempotency-keys.ts).
      await db.schema
        .createTable("idempotency_keys")
        .addColumn("account_sid", "text", (c) => c.notNull())
        .addColumn("idem_key", "text", (c) => c.notNull())
        .addColumn("request_hash", "text", (c) => c.notNull())
        .addColumn("claim_token", "text", (c) => c.notNull())
        .addColumn("locked_until", "bigint")
        .addColumn("response_status", "integer")
        .addColumn("response_type", "text")
        .addColumn("response_body", "text")
        .addColumn("date_created", "bigint", (c) => c.notNull())
        .addColumn("expires_at", "bigint", (c) => c.notNull())
        .addPrimaryKeyConstraint("idempotency_keys_pk", ["account_sid", "idem_key"])
        .execute();
      // The purge takes the oldest expired keys from this index, a few hundred at a time.
      await db.schema
        .createIndex("idempotency_keys_expiry")
        .on("idempotency_keys")
        .column("expires_at")
        .execute();
    },
  },
  "0008_templates": {
    async up(db: Kysely<unknown>) {
      // Email templates (issue 14): a name is unique within its account, which a send may use
      // (TemplateName); lists page by (account_sid, date_created, sid).
      await db.schema
        .createTable("email_templates")
        .addColumn("sid", "text", (c) => c.primaryKey())
        .addColumn("account_sid", "text", (c) => c.notNull().references("accounts.sid"))
        .addColumn("name", "text", (c) => c.notNull())
        .addColumn("subject", "text", (c) => c.notNull())
        .addColumn("html", "text")
        .addColumn("text", "text")
        .addColumn("date_created", "bigint", (c) => c.notNull())
        .addColumn("date_updated", "bigint", (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex("email_templates_account_name")
        .on("email_templates")
        .columns(["account_sid", "name"])
        .unique()
        .execute();
      await db.schema
        .createIndex("email_templates_account_created")
        .on("email_templates")
        .columns(["account_sid", "date_created", "sid"])
        .execute();
    },
  },
  /**
   * Issue 14, scheduled send: a message's SendAt. Its queue row is due then (the queue needs nothing
   * new); the column keeps the time for the API after the row is gone.
   */
  "0009_scheduled": {
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable("email_messages").addColumn("send_at", "bigint").execute();
    },
  },
  "0010_domains": {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable("domains")
        .addColumn("sid", "text", (c) => c.primaryKey())
        .addColumn("account_sid", "text", (c) => c.notNull().references("accounts.sid"))
        // One owner per domain in the installation: signing and the sending policy trust it.
        .addColumn("domain_name", "text", (c) => c.notNull().unique())
        .addColumn("status", "text", (c) => c.notNull())
        .addColumn("dns_records", "text", (c) => c.notNull())
        .addColumn("dkim_keys", "text", (c) => c.notNull())
        .addColumn("date_checked", "bigint")
        .addColumn("next_check_at", "bigint", (c) => c.notNull())
        .addColumn("date_created", "bigint", (c) => c.notNull())
        .addColumn("date_updated", "bigint", (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex("domains_account_created")
        .on("domains")
        .columns(["account_sid", "date_created", "sid"])
        .execute();
      await db.schema.createIndex("domains_next_check").on("domains").column("next_check_at").execute();
    },
  },
  /**
   * Issue 16 (retention, purge, erasure): per-account retention overrides (ms; null inherits), when a
   * message's content was purged, which messages use which attachment bytes (so the bytes go with the
   * last one), and the indexes the purge reads: unpurged messages by the time they last changed (a
   * partial index: a purged message leaves it), and Notifications by message.
   */
  "0012_retention": {
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable("accounts").addColumn("content_retention_ms", "bigint").execute();
      await db.schema.alterTable("accounts").addColumn("metadata_retention_ms", "bigint").execute();
      await db.schema.alterTable("email_messages").addColumn("content_purged_at", "bigint").execute();
      await sql`create index email_messages_unpurged on email_messages (date_updated) where content_purged_at is null`.execute(
        db,
      );
      await db.schema
        .createIndex("notifications_message")
        .on("notifications")
        .column("message_sid")
        .execute();
      await db.schema
        .createTable("attachment_refs")
        .addColumn("sha256", "text", (c) => c.notNull().references("attachment_blobs.sha256"))
        .addColumn("message_sid", "text", (c) => c.notNull())
        .addPrimaryKeyConstraint("attachment_refs_pk", ["sha256", "message_sid"])
        .execute();
      await db.schema
        .createIndex("attachment_refs_message")
        .on("attachment_refs")
        .column("message_sid")
        .execute();
      await carryOverAttachmentRefs(db as Kysely<RefsDatabase>);
    },
  },
  /**
   * The purge walks each account's due messages (each account has its own retention), so the index
   * of unpurged messages leads with the account: by `date_updated` alone, a batch of one group of
   * accounts read past every other account's messages, again at every batch, and the query named
   * every other account in a `not in` list.
   */
  "0013_purge_by_account": {
    async up(db: Kysely<unknown>) {
      await db.schema.dropIndex("email_messages_unpurged").execute();
      await sql`create index email_messages_unpurged_account on email_messages (account_sid, date_updated, sid) where content_purged_at is null`.execute(
        db,
      );
    },
  },
  /**
   * The purge's index of unpurged messages is keyed by creation, not by last change: every delivery
   * changes `date_updated`, so an index keyed by it took a delete and an insert per delivered message
   * (3% of the store thread's statement work for a plain message, docs/performance.md, tenth round),
   * while `date_created` never changes. The content walk reads each account's unpurged messages
   * created before its cutoff (a message changes after it is created) and keeps those last changed
   * before it.
   */
  "0014_purge_by_created": {
    async up(db: Kysely<unknown>) {
      await db.schema.dropIndex("email_messages_unpurged_account").execute();
      await sql`create index email_messages_unpurged_created on email_messages (account_sid, date_created, sid) where content_purged_at is null`.execute(
        db,
      );
    },
  },
};

interface RefsDatabase {
  email_messages: { sid: string; content: string };
  attachment_refs: { sha256: string; message_sid: string };
}

/** The references of messages stored before 0012, read from their content, a thousand at a time. */
async function carryOverAttachmentRefs(db: Kysely<RefsDatabase>): Promise<void> {
  let after = "";
  for (;;) {
    const rows = await db
      .selectFrom("email_messages")
      .select(["sid", "content"])
      .where("sid", ">", after)
      .orderBy("sid")
      .limit(1000)
      .execute();
    if (rows.length === 0) return;
    const refs = new Map<string, { sha256: string; message_sid: string }>();
    for (const row of rows) {
      const content = JSON.parse(row.content) as { attachments?: Array<{ sha256: string }> };
      for (const { sha256 } of content.attachments ?? []) {
        refs.set(`${sha256} ${row.sid}`, { sha256, message_sid: row.sid });
      }
    }
    if (refs.size > 0)
      await db
        .insertInto("attachment_refs")
        .values([...refs.values()])
        .execute();
    after = (rows[rows.length - 1] as { sid: string }).sid;
  }
}

interface LegacyDatabase {
  email_messages: {
    sid: string;
    from_address: string;
    to_addresses: string;
    cc_addresses: string;
    bcc_addresses: string;
    subject: string;
    body: string;
    type: string;
    content: string | null;
    body_part: string | null;
  };
}

/** Fills in the content of messages stored before 0002, a thousand at a time in SID order. */
async function carryOverMessages(db: Kysely<LegacyDatabase>): Promise<void> {
  let after = "";
  for (;;) {
    const rows = await db
      .selectFrom("email_messages")
      .select([
        "sid",
        "from_address",
        "to_addresses",
        "cc_addresses",
        "bcc_addresses",
        "subject",
        "body",
        "type",
      ])
      .where("sid", ">", after)
      .orderBy("sid")
      .limit(1000)
      .execute();
    if (rows.length === 0) return;
    for (const row of rows) {
      const list = (text: string): Mailbox[] => (text.trim() ? storedAddresses(text) : []);
      const content: Omit<EmailContent, "body" | "html" | "text"> = {
        from: list(row.from_address)[0] ?? { name: "", address: row.from_address },
        to: list(row.to_addresses),
        cc: list(row.cc_addresses),
        bcc: list(row.bcc_addresses),
        reply_to: [],
        subject: row.subject,
        type: row.type,
        headers: {},
        tags: {},
        attachments: [],
      };
      await db
        .updateTable("email_messages")
        .set({ content: JSON.stringify(content), body_part: row.body })
        .where("sid", "=", row.sid)
        .execute();
    }
    after = (rows[rows.length - 1] as { sid: string }).sid;
  }
}

/**
 * A stored address list of the rows this migration converts. They were accepted by the lenient reader
 * of their time (nodemailer's addressparser), and are read with it: a row today's stricter rules would
 * refuse (`a@[999.1.1.1]`) still migrates as it was accepted, rather than stopping the migration.
 */
function storedAddresses(text: string): Mailbox[] {
  return addressparser(text).flatMap((item) =>
    "group" in item ? [] : [{ name: item.name.trim(), address: item.address.trim() }],
  );
}

export const migrationProvider: MigrationProvider = {
  async getMigrations() {
    return migrations;
  },
};

/**
 * Applies every pending migration. `migrationTableSchema` places Kysely's bookkeeping tables
 * (kysely_migration, kysely_migration_lock) in that schema: without it Kysely looks for them in any
 * schema, so a database where another schema already has them would skip creating ours.
 */
export async function migrateToLatest(db: Kysely<Database>, migrationTableSchema?: string): Promise<void> {
  const migrator = new Migrator({ db, provider: migrationProvider, migrationTableSchema });
  const { error, results } = await migrator.migrateToLatest();
  const failed = results?.find((result) => result.status === "Error");
  if (error || failed) {
    const cause = error instanceof Error ? error.message : String(error ?? "");
    throw new Error(`database migration ${failed?.migrationName ?? ""} failed: ${cause}`, { cause: error });
  }
}
