import type { Generated } from "kysely";

/**
 * The tables as Kysely sees them. Times are milliseconds since the epoch (bigint), which compare
 * and index the same way on SQLite and PostgreSQL.
 */
export interface AccountsTable {
  sid: string;
  parent_sid: string | null;
  email_address: string;
  friendly_name: string;
  type: string;
  status: string;
  role: string;
  auth_token_hash: string;
  password_hash: string | null;
  date_created: number;
  date_updated: number;
  /** Retention overrides in ms (issue 16); null inherits the parent's (or the setting's). */
  content_retention_ms: number | null;
  metadata_retention_ms: number | null;
}

/**
 * A message: the columns lists filter and sort on, and the message as the caller gave it
 * (EmailContent in src/model/email-message.ts): its texts in body_part, html_part and text_part, the
 * rest as the JSON document `content` (see storeContent). from_address, to_addresses and subject
 * repeat parts of the content as text so that lists can filter on them.
 */
export interface EmailMessagesTable {
  sid: string;
  account_sid: string;
  from_address: string;
  to_addresses: string;
  subject: string;
  content: string;
  body_part: string | null;
  html_part: string | null;
  text_part: string | null;
  status: string;
  message_id: string;
  status_callback: string | null;
  error_code: number | null;
  error_message: string | null;
  num_attempts: Generated<number>;
  date_created: number;
  date_updated: number;
  date_sent: number;
  date_delivered: number | null;
  /** SendAt: when a scheduled message is due (null when it was sent at once); kept after delivery. */
  send_at: number | null;
  /** When its content was purged (retention or erasure, src/lifecycle/); null while it has it. */
  content_purged_at: number | null;
}

/** One row per message still to be delivered; deleted when the message reaches a final status. */
export interface DeliveryQueueTable {
  message_sid: string;
  due_at: number;
  lease_owner: string | null;
  lease_expires_at: number | null;
}

/**
 * One row per running delivery worker (PostgreSQL): when it last said it was alive. The leases of an
 * owner silent for longer than MAILROOM_HEARTBEAT_TIMEOUT_MS are taken over before they run out.
 */
export interface DeliveryOwnersTable {
  owner: string;
  heartbeat_at: number;
}

export interface EmailAttemptsTable {
  sid: string;
  message_sid: string;
  account_sid: string;
  attempt: number;
  date_started: number;
  date_finished: number;
  outcome: string;
  smtp_code: number | null;
  response: string | null;
  error_code: number | null;
  error_message: string | null;
  recipients: string | null;
}

/** The composed MIME of a message, built once (at the first attempt) and reused by every retry. */
export interface EmailMimeTable {
  message_sid: string;
  raw: string;
}

/** A message's tags, one row each, for the list filter `Tag=name:value`. */
export interface EmailTagsTable {
  message_sid: string;
  account_sid: string;
  name: string;
  value: string;
}

/** Attachment bytes, stored once per distinct content however many messages carry them. */
export interface AttachmentBlobsTable {
  sha256: string;
  size: number;
  content: Uint8Array;
}

/** Which messages use which attachment bytes: the bytes are deleted with their last reference (src/lifecycle/). */
export interface AttachmentRefsTable {
  sha256: string;
  message_sid: string;
}

/**
 * What happened to a message, one row per change (issue 13): written in the transaction that makes
 * the change. `recipient` where the event concerns one; the SMTP reply or error where there is one.
 */
export interface EmailEventsTable {
  sid: string;
  account_sid: string;
  message_sid: string;
  type: string;
  recipient: string | null;
  date_created: number;
  smtp_code: number | null;
  response: string | null;
  error_code: number | null;
  error_message: string | null;
  retry_at: number | null;
}

/** Per-day counts for Usage Records, split over shards (a count is the sum of its shards' rows). */
export interface UsageCountersTable {
  account_sid: string;
  /** The UTC day, yyyy-MM-dd. */
  day: string;
  category: string;
  shard: number;
  count: number;
}

/** Restcomm Notifications: log 0 an error, 1 a warning. */
export interface NotificationsTable {
  sid: string;
  account_sid: string;
  date_created: number;
  log: number;
  error_code: number;
  message_text: string;
  message_sid: string | null;
  request_url: string | null;
  request_method: string | null;
  request_variables: string | null;
  response_headers: string | null;
  response_body: string | null;
}

export interface WebhooksTable {
  sid: string;
  account_sid: string;
  url: string;
  /** Comma-separated event types; null: every type. */
  events: string | null;
  /** 1 or 0. */
  enabled: number;
  /** The signing secret, encrypted (src/domain/secret-box.ts). */
  secret_sealed: string;
  failing_since: number | null;
  date_created: number;
  date_updated: number;
}

/**
 * Webhook deliveries (and StatusCallbacks, webhook_sid null) still to make, leased like delivery_queue.
 */
export interface WebhookQueueTable {
  sid: string;
  account_sid: string;
  webhook_sid: string | null;
  event_sid: string | null;
  message_sid: string | null;
  callback_url: string | null;
  attempts: Generated<number>;
  created_at: number;
  due_at: number;
  lease_owner: string | null;
  lease_expires_at: number | null;
}

/** One attempt to deliver an event to a webhook (the Deliveries resource). */
export interface WebhookDeliveriesTable {
  sid: string;
  account_sid: string;
  webhook_sid: string;
  event_sid: string;
  event_type: string;
  message_sid: string | null;
  attempt: number;
  date_created: number;
  status_code: number | null;
  latency_ms: number;
  /** delivered | retrying | failed */
  outcome: string;
  error: string | null;
  response_body: string | null;
}

/**
 * A known text sealed with the installation's secret key: every process checks at start that its
 * key opens it (src/services/secret-key.ts). One row per key use (`secret-box`).
 */
export interface SecretKeyChecksTable {
  name: string;
  sealed: string;
  date_created: number;
}

/** An email template (src/services/templates.ts): Handlebars sources, checked when saved. */
export interface EmailTemplatesTable {
  sid: string;
  account_sid: string;
  /** Unique per account. */
  name: string;
  subject: string;
  html: string | null;
  text: string | null;
  date_created: number;
  /** Strictly increasing per template: compiled templates are cached per (sid, date_updated). */
  date_updated: number;
}

/** A sending domain (src/domains/): its DKIM keys and the DNS records it was told to publish. */
export interface DomainsTable {
  sid: string;
  account_sid: string;
  /** Lower-case ASCII (punycode); unique in the installation (one owner per domain). */
  domain_name: string;
  /** pending | verified | failed */
  status: string;
  /** JSON: the records to publish with their last check (DomainRecordState[]). */
  dns_records: string;
  /** JSON: StoredDkimKey[] (private keys sealed). */
  dkim_keys: string;
  date_checked: number | null;
  /** When the background re-check is due; a process claims a domain by moving it on. */
  next_check_at: number;
  date_created: number;
  date_updated: number;
}

export interface Database {
  accounts: AccountsTable;
  email_messages: EmailMessagesTable;
  delivery_queue: DeliveryQueueTable;
  delivery_owners: DeliveryOwnersTable;
  email_attempts: EmailAttemptsTable;
  email_mime: EmailMimeTable;
  email_tags: EmailTagsTable;
  attachment_blobs: AttachmentBlobsTable;
  attachment_refs: AttachmentRefsTable;
  email_events: EmailEventsTable;
  usage_counters: UsageCountersTable;
  notifications: NotificationsTable;
  webhooks: WebhooksTable;
  webhook_queue: WebhookQueueTable;
  webhook_deliveries: WebhookDeliveriesTable;
  secret_key_checks: SecretKeyChecksTable;
  email_templates: EmailTemplatesTable;
  domains: DomainsTable;
  idempotency_keys: IdempotencyKeysTable;
}

/**
 * An Idempotency-Key of an account (issue 14): claimed while its request is processed (locked_until
 * set, no response), then holding the answer stored with the request's message(s), until expires_at.
 */
export interface IdempotencyKeysTable {
  account_sid: string;
  idem_key: string;
  /** SHA-256 of the canonical request (src/http/idempotency.ts): a repeat must match it. */
  request_hash: string;
  /** Who holds the claim: the answer is stored only by the request holding this token. */
  claim_token: string;
  /** While processing: until when the claim holds (a crashed request's claim is taken over after it). */
  locked_until: number | null;
  response_status: number | null;
  response_type: string | null;
  response_body: string | null;
  date_created: number;
  expires_at: number;
}

/** A column as the hand-written writers list it: its name, and its type for PostgreSQL's unnest(). */
interface WrittenColumn<Table> {
  name: keyof Table & string;
  pgType: "text" | "integer" | "bigint" | "bytea";
  /** The column's default, written when a row leaves it out (otherwise null). */
  default?: number;
}

/**
 * Every column of email_messages in one order, for the writers that spell out their INSERT (the
 * group commit's, sqlite-writes.ts and postgres-writes.ts) instead of letting Kysely build it.
 */
export const MESSAGE_COLUMNS: readonly WrittenColumn<EmailMessagesTable>[] = [
  { name: "sid", pgType: "text" },
  { name: "account_sid", pgType: "text" },
  { name: "from_address", pgType: "text" },
  { name: "to_addresses", pgType: "text" },
  { name: "subject", pgType: "text" },
  { name: "content", pgType: "text" },
  { name: "body_part", pgType: "text" },
  { name: "html_part", pgType: "text" },
  { name: "text_part", pgType: "text" },
  { name: "status", pgType: "text" },
  { name: "message_id", pgType: "text" },
  { name: "status_callback", pgType: "text" },
  { name: "error_code", pgType: "integer" },
  { name: "error_message", pgType: "text" },
  { name: "num_attempts", pgType: "integer", default: 0 },
  { name: "date_created", pgType: "bigint" },
  { name: "date_updated", pgType: "bigint" },
  { name: "date_sent", pgType: "bigint" },
  { name: "date_delivered", pgType: "bigint" },
  { name: "send_at", pgType: "bigint" },
];

/** Every column of email_attempts in one order (see MESSAGE_COLUMNS). */
export const ATTEMPT_COLUMNS: readonly WrittenColumn<EmailAttemptsTable>[] = [
  { name: "sid", pgType: "text" },
  { name: "message_sid", pgType: "text" },
  { name: "account_sid", pgType: "text" },
  { name: "attempt", pgType: "integer" },
  { name: "date_started", pgType: "bigint" },
  { name: "date_finished", pgType: "bigint" },
  { name: "outcome", pgType: "text" },
  { name: "smtp_code", pgType: "integer" },
  { name: "response", pgType: "text" },
  { name: "error_code", pgType: "integer" },
  { name: "error_message", pgType: "text" },
  { name: "recipients", pgType: "text" },
];

export const TAG_COLUMNS: readonly WrittenColumn<EmailTagsTable>[] = [
  { name: "message_sid", pgType: "text" },
  { name: "account_sid", pgType: "text" },
  { name: "name", pgType: "text" },
  { name: "value", pgType: "text" },
];

export const BLOB_COLUMNS: readonly WrittenColumn<AttachmentBlobsTable>[] = [
  { name: "sha256", pgType: "text" },
  { name: "size", pgType: "bigint" },
  { name: "content", pgType: "bytea" },
];

/** Every column of email_events in one order (see MESSAGE_COLUMNS). */
export const EVENT_COLUMNS: readonly WrittenColumn<EmailEventsTable>[] = [
  { name: "sid", pgType: "text" },
  { name: "account_sid", pgType: "text" },
  { name: "message_sid", pgType: "text" },
  { name: "type", pgType: "text" },
  { name: "recipient", pgType: "text" },
  { name: "date_created", pgType: "bigint" },
  { name: "smtp_code", pgType: "integer" },
  { name: "response", pgType: "text" },
  { name: "error_code", pgType: "integer" },
  { name: "error_message", pgType: "text" },
  { name: "retry_at", pgType: "bigint" },
];

/** The columns of notifications the group commit writes (message notifications). */
export const NOTIFICATION_COLUMNS: readonly WrittenColumn<NotificationsTable>[] = [
  { name: "sid", pgType: "text" },
  { name: "account_sid", pgType: "text" },
  { name: "date_created", pgType: "bigint" },
  { name: "log", pgType: "integer" },
  { name: "error_code", pgType: "integer" },
  { name: "message_text", pgType: "text" },
  { name: "message_sid", pgType: "text" },
];

/** A row's value for a written column; where the row leaves it out, the column's default or null. */
export function columnValue(row: object, column: { name: string; default?: number }): unknown {
  return (row as Record<string, unknown>)[column.name] ?? column.default ?? null;
}
