import type { Insertable, Selectable } from "kysely";
import type { QueueTable, StoreDialect } from "./dialect.js";
import type { DomainPatch, DomainRow, InsertDomainOutcome, SigningDomainRow } from "./domain-queries.js";
import type {
  ErasureRequest,
  ErasureResult,
  PurgeBatchRequest,
  PurgeBatchResult,
  PurgeCounts,
  PurgeCutoffs,
} from "./lifecycle-queries.js";
import type {
  AccountsTable,
  AttachmentBlobsTable,
  EmailAttemptsTable,
  EmailEventsTable,
  EmailMessagesTable,
  EmailTagsTable,
  NotificationsTable,
  WebhookDeliveriesTable,
  WebhookQueueTable,
  WebhooksTable,
} from "./schema.js";
import type {
  WebhookAttemptRecord,
  WebhookAttemptResult,
  WebhookJob,
  WebhookTargets,
} from "./webhook-jobs.js";

export type { NewTemplate, TemplatePatch, TemplateRow, TemplateWrite } from "./template-types.js";
export type {
  WebhookAttemptRecord,
  WebhookAttemptResult,
  WebhookJob,
  WebhookTargets,
} from "./webhook-jobs.js";

import type { NewTemplate, TemplatePatch, TemplateRow, TemplateWrite } from "./template-types.js";

/** The store's rows and what the rest of Mailroom may ask of a store (MailStore). */
export type AccountRow = Selectable<AccountsTable>;
export type EmailMessageRow = Selectable<EmailMessagesTable>;
/** A message as the API shows it: its row, and when its next delivery attempt is due (while queued). */
export type EmailMessageView = EmailMessageRow & { next_attempt_at: number | null };
export type EmailAttemptRow = Selectable<EmailAttemptsTable>;
export type NewAccount = Insertable<AccountsTable>;
export type NewEmailMessage = Insertable<EmailMessagesTable>;

/** What a retry needs: the earlier attempts (their settled recipients are skipped) and the MIME sent. */
export interface RetryContext {
  /** In attempt order. */
  attempts: EmailAttemptRow[];
  /** The MIME composed at the first attempt; undefined if none was stored. */
  mime: string | undefined;
}

/** A lease taken on a message as it is accepted, so the accepting process delivers it without a claim. */
export interface Lease {
  owner: string;
  expiresAt: number;
}

export type TagRow = EmailTagsTable;
export type BlobRow = AttachmentBlobsTable;

/** What a message may bring besides its row: its tags and the bytes of its attachments (stored once per content). */
export interface MessageExtras {
  tags: TagRow[];
  blobs: BlobRow[];
}

export const NO_EXTRAS: MessageExtras = { tags: [], blobs: [] };

/** A message to store with its queue row, leased to a worker already or left for any worker to claim. */
export interface AcceptedEmail extends MessageExtras {
  message: NewEmailMessage;
  lease: Lease | null;
}

export type AccountPatch = Partial<
  Pick<
    AccountRow,
    | "friendly_name"
    | "status"
    | "role"
    | "auth_token_hash"
    | "password_hash"
    | "date_updated"
    | "content_retention_ms"
    | "metadata_retention_ms"
  >
>;

/** How an account is looked up: by SID, or by email address (compared in lower case). */
export type AccountKey = { sid: string } | { email: string };

/** What a create must find true, checked in the same serialised transaction as the insert. */
export interface AccountCreateChecks {
  /** Every ancestor must be active (an API create); otherwise only not closed (the operator's CLI). */
  activeLineage: boolean;
  /**
   * At most `limit` accounts below each ancestor whose role is not `exemptRole` (checked on the
   * topmost one, whose subtree holds the others'); absent for creates that are not limited.
   */
  descendantLimit?: { limit: number; exemptRole: string } | undefined;
}

/** The outcome of a checked create: created, or the first check that refused it. */
export type AccountCreateOutcome =
  | { kind: "created" }
  | { kind: "email-taken" }
  | { kind: "parent-missing" }
  /** An ancestor that is not active (or, for the operator, that is closed). */
  | { kind: "ancestor-inactive"; ancestor: AccountRow }
  /** `ancestor` already has `limit` accounts below it. */
  | { kind: "limit-reached"; ancestor: AccountRow; limit: number };

export interface EmailFilter {
  accountSid: string;
  to?: string;
  from?: string;
  status?: string;
  /** Every one of these tags (name, value). */
  tags?: Array<readonly [string, string]>;
  createdFrom?: number;
  createdBefore?: number;
}

/** Restcomm Notifications (notifications.ts reads them): an account's, narrowed by Restcomm's filters. */
export type NotificationRow = Selectable<NotificationsTable>;

export interface NotificationFilter {
  accountSid: string;
  errorCode?: number;
  /** 0 error, 1 warning. */
  log?: number;
  createdFrom?: number;
  createdBefore?: number;
  /** Contained in message_text, case-insensitively. */
  messageText?: string;
  /** Equal to request_url. */
  requestUrl?: string;
}

/** An account's usage counters over a range of UTC days (both ends included, `yyyy-MM-dd`). */
export interface UsageQuery {
  accountSid: string;
  firstDay: string;
  lastDay: string;
  categories: readonly string[];
}

/** One day's count of one category: the sum of its shards' rows. */
export interface UsageDayCount {
  day: string;
  category: string;
  count: number;
}

export interface Page<T> {
  rows: T[];
  total: number;
}

/** What /metrics reports about the queues (all processes sharing the store). */
export interface QueueStats {
  /** Rows in delivery_queue: messages waiting, retrying or being delivered. */
  depth: number;
  /** The earliest due_at among them (ms since the epoch); null when the queue is empty. */
  oldestDueAt: number | null;
  /** Rows in webhook_queue: webhook deliveries and status callbacks still to make. */
  webhookBacklog: number;
}

export type EmailEventRow = Selectable<EmailEventsTable>;
export type WebhookRow = Selectable<WebhooksTable>;
export type NewWebhook = Insertable<WebhooksTable>;
export type WebhookDeliveryRow = Selectable<WebhookDeliveriesTable>;
export type NewWebhookJob = Insertable<WebhookQueueTable>;

/** What a write that queued webhook jobs announces (MailStore.listenWebhookJobs). */
export interface WebhookJobsAnnounced {
  /** Jobs inserted already leased to the sender that offered room, with what sending them needs. */
  handed: WebhookJob[];
  /** Some jobs were left unleased: the sender claims them. */
  queued: boolean;
  /** Room per webhook SID the store gave back unused (that webhook has jobs waiting for claims). */
  returned: Record<string, number>;
  /** Whom the jobs left for claims are for (undefined: not said; PostgreSQL). */
  waiting: { webhookSids: string[]; callbacks: boolean } | undefined;
}

/** The room the webhook sender offered, as a write batch uses it (see SqliteWrites). */
export interface WebhookHandOff {
  owner: string;
  leaseExpiresAt: number;
  /** Jobs per webhook SID that may still be handed over. */
  room: Map<string, number>;
}
export type WebhookPatch = Partial<
  Pick<WebhookRow, "url" | "events" | "enabled" | "secret_sealed" | "date_updated">
>;

/** Which events of an account a list shows. */
export interface EventFilter {
  accountSid: string;
  messageSid?: string;
  /** Any of these types. */
  types?: string[];
  createdFrom?: number;
  createdBefore?: number;
}

/** A replay by time range: the account's events of `types` created in [from, before), to one webhook. */
export interface ReplayRange {
  accountSid: string;
  webhookSid: string;
  types: string[];
  from: number;
  before: number;
  /** The most events one replay queues; more and it queues none. */
  max: number;
}

/** What one delivery attempt concluded, written in one transaction with the message's new state. */
export interface AttemptRecord {
  /** The worker that held the lease for this attempt. */
  owner: string;
  /**
   * Whether the message has a StatusCallback (the worker knows from its row): false spares a final
   * attempt's lookup for one; absent means not known, and the store looks.
   */
  hasStatusCallback?: boolean;
  /** The composed MIME, when this attempt composed it (the first one): stored with the attempt. */
  mime?: string | undefined;
  attempt: Insertable<EmailAttemptsTable>;
  status: string;
  errorCode: number | null;
  errorMessage: string | null;
  /** When to try again; null when the message reached a final status and leaves the queue. */
  retryAt: number | null;
  dateDelivered: number | null;
}

/**
 * What the rest of Mailroom may ask of a store. `Store` answers it in the calling thread;
 * `ThreadedStore` (threaded-store.ts) forwards every call to a `Store` running in a worker thread.
 */
export interface MailStore {
  readonly kind: StoreDialect["name"];
  migrate(): Promise<void>;
  ping(): Promise<void>;
  close(): Promise<void>;
  /** Calls `listener` when another process queued work; resolves to a function that stops listening. */
  listenQueued(listener: () => void): Promise<() => Promise<void>>;
  /**
   * Calls `listener` when a write of this store queued webhook jobs (events of an account with
   * webhooks, StatusCallbacks): the webhook sender looks at its queue then, not at every accept.
   * Returns a function that stops it.
   */
  listenWebhookJobs(listener: (announced: WebhookJobsAnnounced) => void): () => void;
  /**
   * The webhook sender's room for jobs handed over at write time (SQLite; see WebhookHandOff): adds
   * `room` jobs per webhook SID to what the store may insert already leased to `owner` and announce
   * with their data. `room` null withdraws all of it (the sender stops, or forgets webhooks gone
   * quiet) and resolves to what was left of it per webhook; otherwise it resolves to `{}`.
   */
  offerWebhookRoom(
    owner: string,
    leaseMs: number,
    room: Record<string, number> | null,
  ): Promise<Record<string, number>>;
  countAccounts(): Promise<number>;
  /** Inserts an account as given, with no checks (tests and benchmarks seed stores with it). */
  insertAccount(account: NewAccount): Promise<void>;
  /**
   * Inserts an account if its email is free, its parent exists and `checks` hold, all read in the
   * same transaction as the insert, serialised with every other create and close (on PostgreSQL,
   * across processes): a create never commits below an account that a close has already cascaded over.
   */
  createAccount(account: NewAccount, checks: AccountCreateChecks): Promise<AccountCreateOutcome>;
  findAccountBySid(sid: string): Promise<AccountRow | undefined>;
  findAccountByEmail(email: string): Promise<AccountRow | undefined>;
  /** The account and its ancestors, nearest first (the root last); empty when there is no such account. */
  findAccountLineage(key: AccountKey): Promise<AccountRow[]>;
  listSubAccounts(parentSid: string): Promise<AccountRow[]>;
  /** Every account, oldest first (the operator's list). */
  listAccounts(): Promise<AccountRow[]>;
  /**
   * Applies `patch` unless the account is closed; false when it is. `status: "closed"` also closes
   * every account below it, in the same transaction, serialised with creates (see createAccount).
   */
  updateOpenAccount(sid: string, patch: AccountPatch): Promise<boolean>;
  /** Stores a message and its queue row (leased when `lease` is given); resolves once both are committed. */
  acceptEmail(message: NewEmailMessage, lease?: Lease | null, extras?: MessageExtras): Promise<void>;
  /**
   * Stores several messages with their queue rows in one transaction (a batch send), and with them
   * `answer` on its claimed Idempotency-Key: all or none. Fails with IDEMPOTENCY_CLAIM_LOST, storing
   * nothing, when the claim is no longer held.
   */
  acceptEmails(accepted: AcceptedEmail[], answer?: IdempotentAnswer): Promise<void>;
  /** Claims an account's Idempotency-Key for a request, or says why not (idempotency-keys.ts). */
  claimIdempotencyKey(claim: IdempotencyClaimRequest): Promise<IdempotencyClaim>;
  /** Gives a claimed key up (its request failed): the next request with it is processed afresh. */
  releaseIdempotencyKey(accountSid: string, key: string, token: string): Promise<void>;
  /** Deletes up to `limit` keys expired before `now`, oldest first; returns how many. */
  purgeIdempotencyKeys(now: number, limit: number): Promise<number>;
  /**
   * Deletes every claim without an answer, and returns how many: like reclaimLeases, only for a
   * process that owns the store alone (an SQLite server at start), when they are all leftovers of a
   * process that died between claim and commit. Their repeats are then processed at once.
   */
  releaseUnansweredIdempotencyKeys(): Promise<number>;
  findEmail(accountSid: string, sid: string): Promise<EmailMessageView | undefined>;
  listEmails(filter: EmailFilter, offset: number, limit: number): Promise<Page<EmailMessageView>>;
  claimDue(owner: string, now: number, leaseMs: number, limit: number): Promise<EmailMessageRow[]>;
  nextDueAt(): Promise<number | null>;
  /** How full the queues are, for /metrics (read at scrape time, never per message). */
  queueStats(): Promise<QueueStats>;
  recordAttempt(record: AttemptRecord): Promise<boolean>;
  /** Gives back the leases `owner` still holds on these rows of `queue` (default delivery_queue). */
  releaseLeases(owner: string, sids: readonly string[], queue?: QueueTable): Promise<void>;
  /**
   * Gives back every lease, whoever holds it, and returns how many. Only for a process that owns the
   * store alone: an SQLite server under its data dir lock (data-dir-lock.ts), at start, when any lease
   * is a leftover of a process that died.
   */
  reclaimLeases(): Promise<number>;
  /**
   * Says, from the store's own thread, that `owner` is alive, every third of `timeoutMs` until
   * stopHeartbeat; and from then on this store's claims take over the leases of owners that have been
   * silent for longer than `timeoutMs` (PostgreSQL; an SQLite server is the only owner of its file).
   */
  startHeartbeat(owner: string, timeoutMs: number): Promise<void>;
  /** Stops the heartbeat and removes `owner`'s row. */
  stopHeartbeat(owner: string): Promise<void>;
  renewLeases(owner: string, sids: readonly string[], expiresAt: number, queue?: QueueTable): Promise<void>;
  listAttempts(messageSid: string): Promise<EmailAttemptRow[]>;
  findMime(messageSid: string): Promise<string | undefined>;
  /** An account's notifications, newest first, with the total matching. */
  listNotifications(
    filter: NotificationFilter,
    offset: number,
    limit: number,
  ): Promise<Page<NotificationRow>>;
  findNotification(accountSid: string, sid: string): Promise<NotificationRow | undefined>;
  /** Per-day usage counts, summed over shards; days and categories with no rows are left out. */
  usageByDay(query: UsageQuery): Promise<UsageDayCount[]>;
  /** The attachment bytes stored under these SHA-256 digests (missing ones are left out). */
  findBlobs(sha256s: readonly string[]): Promise<Map<string, Uint8Array>>;
  /** What retrying these messages needs, for all of them at once (one entry per SID asked for). */
  findRetryContexts(messageSids: readonly string[]): Promise<Map<string, RetryContext>>;

  // ---- webhooks, events and their deliveries (hooks-queries.ts) ----
  /** Inserts the webhook unless its account has `limit` already (false then); serialised with other creates. */
  insertWebhook(webhook: NewWebhook, limit: number): Promise<boolean>;
  findWebhook(accountSid: string, sid: string): Promise<WebhookRow | undefined>;
  listWebhooks(accountSid: string, offset: number, limit: number): Promise<Page<WebhookRow>>;
  /** Applies `patch` (and with `reenable`, turns it on: see hooks-queries.ts); undefined if there is no such webhook. */
  updateWebhook(
    accountSid: string,
    sid: string,
    patch: WebhookPatch,
    reenable: boolean,
  ): Promise<WebhookRow | undefined>;
  /** Deletes the webhook, its queued deliveries and its delivery log; false if there is no such webhook. */
  deleteWebhook(accountSid: string, sid: string): Promise<boolean>;
  /**
   * Scheduled send (schedule-queries.ts): cancels a message no worker holds (scheduled, or queued and
   * unclaimed), or moves a scheduled one to `sendAt`; false when its queue row is leased or gone (the
   * caller reads the message to say why).
   */
  cancelEmail(sid: string, now: number): Promise<boolean>;
  rescheduleEmail(sid: string, sendAt: number, now: number): Promise<boolean>;
  /** Newest first, or oldest first with `order` "asc". */
  listEvents(
    filter: EventFilter,
    offset: number,
    limit: number,
    order: "asc" | "desc",
  ): Promise<Page<EmailEventRow>>;
  findEvent(accountSid: string, sid: string): Promise<EmailEventRow | undefined>;
  listWebhookDeliveries(
    accountSid: string,
    webhookSid: string,
    offset: number,
    limit: number,
  ): Promise<Page<WebhookDeliveryRow>>;
  findWebhookDelivery(
    accountSid: string,
    webhookSid: string,
    sid: string,
  ): Promise<WebhookDeliveryRow | undefined>;
  /** Queues these webhook jobs (all or none). */
  enqueueWebhookJobs(jobs: readonly NewWebhookJob[]): Promise<void>;
  /** Queues the range's events for the webhook (see ReplayRange); none if there are more than `max`. */
  replayEventRange(range: ReplayRange, now: number): Promise<{ queued: number } | { tooMany: true }>;
  /** The secret-key check value stored under `name`, storing `candidate` if there is none yet. */
  claimSecretKeyCheck(name: string, candidate: string, now: number): Promise<string>;
  /**
   * Leases up to `limit` due webhook_queue jobs to `owner` (the delivery worker's owner: the same
   * heartbeat covers both) and returns them with what sending needs. Jobs with nothing left to send
   * (their webhook deleted or disabled, their event or message gone) are deleted instead.
   */
  claimWebhookJobs(
    owner: string,
    now: number,
    leaseMs: number,
    limit: number,
    skip?: WebhookTargets,
  ): Promise<WebhookJob[]>;
  /** The earliest due time of an unleased webhook job (not of the targets in `skip`), or null if none waits. */
  nextWebhookDueAt(skip?: WebhookTargets): Promise<number | null>;
  /** Writes webhook attempts (see WebhookAttemptRecord), all in one transaction. */
  recordWebhookAttempts(records: readonly WebhookAttemptRecord[]): Promise<WebhookAttemptResult[]>;

  // ---- email templates (template-queries.ts) ----
  /** Inserts the template unless its account has `limit` already or the name is taken there. */
  insertTemplate(template: NewTemplate, limit: number): Promise<TemplateWrite<true | "limit">>;
  /** The template `sid` if one of `accountSids` (a lineage) owns it. */
  findTemplate(accountSids: readonly string[], sid: string): Promise<TemplateRow | undefined>;
  /** The template called `name` of the first of `accountSids` that has one. */
  findTemplateByName(accountSids: readonly string[], name: string): Promise<TemplateRow | undefined>;
  listTemplates(accountSids: readonly string[], offset: number, limit: number): Promise<Page<TemplateRow>>;
  /** Changes the account's own template (date_updated only grows); undefined if it has no such template. */
  updateTemplate(
    accountSid: string,
    sid: string,
    patch: TemplatePatch,
    now: number,
  ): Promise<TemplateWrite<TemplateRow | undefined>>;
  deleteTemplate(accountSid: string, sid: string): Promise<boolean>;
  // ---- sending domains (domain-queries.ts) ----
  /** Inserts unless the account has `limit` domains or the name is anyone's already (serialised with creates). */
  insertDomain(domain: DomainRow, limit: number): Promise<InsertDomainOutcome>;
  findDomain(accountSid: string, sid: string): Promise<DomainRow | undefined>;
  listDomains(accountSid: string, offset: number, limit: number): Promise<Page<DomainRow>>;
  /** Applies `patch` (with `notification`, in one transaction); undefined if there is no such domain. */
  updateDomain(
    accountSid: string,
    sid: string,
    patch: DomainPatch,
    notification?: NotificationRow,
  ): Promise<DomainRow | undefined>;
  deleteDomain(accountSid: string, sid: string): Promise<boolean>;
  listSigningDomains(): Promise<SigningDomainRow[]>;
  /** Claims up to `limit` due re-checks for this process, moving each on to `nextCheckAt`. */
  claimDomainChecks(now: number, nextCheckAt: number, limit: number): Promise<DomainRow[]>;
  // ---- retention, purge and erasure (lifecycle-queries.ts, issue 16) ----
  /** Purges one batch of messages past their retention, in one short transaction. */
  purgeBatch(request: PurgeBatchRequest): Promise<PurgeBatchResult>;
  /** How many messages a pass would purge now, per kind (changes nothing). */
  countPurgeable(cutoffs: Record<"content" | "metadata", PurgeCutoffs>): Promise<PurgeCounts>;
  /** Gives up to `maxPages` free pages back to the file system (SQLite); returns how many. */
  giveSpaceBack(maxPages: number): Promise<number>;
  /** Erases an address from the messages of some accounts (see ErasureRequest). */
  eraseAddress(request: ErasureRequest): Promise<ErasureResult>;
}

/** An answer as it was sent, stored with an Idempotency-Key so a repeat gets the same bytes. */
export interface StoredAnswer {
  status: number;
  contentType: string;
  body: string;
}

/** The answer to store on a claimed key, in the transaction of the request's messages. */
export interface IdempotentAnswer {
  accountSid: string;
  key: string;
  /** The claim's token (IdempotencyClaim "claimed"): only its holder stores the answer. */
  token: string;
  answer: StoredAnswer;
}

export interface IdempotencyClaimRequest {
  accountSid: string;
  key: string;
  requestHash: string;
  now: number;
  /** How long the claim holds without an answer before another request may take it over. */
  lockMs: number;
  /** How long the key (and its answer) is kept. */
  ttlMs: number;
}

/** What claiming a key found: it is ours now, answered already, used for another request, or in flight. */
export type IdempotencyClaim =
  | { kind: "claimed"; token: string }
  | { kind: "replay"; answer: StoredAnswer }
  | { kind: "mismatch" }
  | { kind: "in-flight" };

/** The error code of a write whose Idempotency-Key claim was taken over (see acceptEmails). */
export const IDEMPOTENCY_CLAIM_LOST = "MAILROOM_IDEMPOTENCY_CLAIM_LOST";
