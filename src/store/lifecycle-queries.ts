import { type Insertable, type Kysely, PostgresAdapter, sql } from "kysely";
import { formatMailboxList, type Mailbox } from "../domain/addresses.js";
import { newOrderedSid } from "../domain/ids.js";
import type { Database, NotificationsTable } from "./schema.js";
import { immediateTransaction } from "./sqlite-transaction.js";

/**
 * The store side of issue 16: purging content and metadata past their retention, and erasing one
 * address. Every call is one short transaction over at most one batch of messages, so the purge
 * never holds SQLite's single writer (shared with accepts and attempt records) or PostgreSQL's row
 * locks for long; the caller (src/lifecycle/purger.ts) yields between calls.
 */

/** The statuses after which nothing more happens to a message (`canceled`: scheduled send, issue 14). */
export const FINAL_STATUSES = ["sent", "failed", "canceled"] as const;

/**
 * Which messages are past their retention: those of accounts without an exception changed before
 * `defaultBefore`, and those of the accounts in each group before the group's own time.
 */
export interface PurgeCutoffs {
  defaultBefore: number;
  groups: Array<{ before: number; accountSids: string[] }>;
}

export type PurgeKind = "content" | "metadata";

export interface PurgeBatchRequest {
  kind: PurgeKind;
  cutoffs: PurgeCutoffs;
  now: number;
  limit: number;
}

export interface PurgeBatchResult {
  /** Messages purged by this batch (fewer than the limit: nothing more is due now). */
  messages: number;
  /** Attachment contents deleted because no message uses them any more. */
  blobs: number;
  /** PostgreSQL: another process holds the purge lock; this one should end its pass. */
  busy: boolean;
}

/** What a pass would purge now (`mailroom purge --dry-run`). */
export interface PurgeCounts {
  content: number;
  metadata: number;
}

export interface ErasureRequest {
  /** The erasing account and every account below it. */
  accountSids: string[];
  /** The address to erase, in lower case. */
  address: string;
  /** What replaces it: an address made of its salted hash. */
  replacement: string;
  now: number;
  /** Messages examined per transaction. */
  batch: number;
  /** The Notification that records the erasure, written once it is done. */
  notification: Insertable<NotificationsTable>;
}

export interface ErasureResult {
  /** Final messages whose addresses and content were erased. */
  affected: number;
  /** Messages to or from the address not final yet (queued, sending, scheduled): left as they are. */
  pending: number;
}

// ---------------------------------------------------------------- purge

export async function purgeBatch(
  db: Kysely<Database>,
  request: PurgeBatchRequest,
): Promise<PurgeBatchResult> {
  return purgeTransaction(db, async (trx) => {
    const sids = await dueSids(trx, request.kind, request.cutoffs, request.limit);
    if (sids.length === 0) return { messages: 0, blobs: 0, busy: false };
    if (request.kind === "content") {
      const { purged, blobs } = await purgeContent(trx, sids, request.now);
      return { messages: purged, blobs, busy: false };
    }
    return { ...(await purgeMetadata(trx, sids)), busy: false };
  });
}

export async function countPurgeable(
  db: Kysely<Database>,
  cutoffs: Record<PurgeKind, PurgeCutoffs>,
): Promise<PurgeCounts> {
  const count = async (kind: PurgeKind) => {
    let total = 0;
    for (const group of groupsOf(cutoffs[kind])) {
      if (group.only?.length === 0) continue;
      const row = await dueQuery(db, kind, group)
        .clearSelect()
        .select((eb) => eb.fn.countAll<number | string>().as("n"))
        .executeTakeFirstOrThrow();
      total += Number(row.n);
    }
    return total;
  };
  return { content: await count("content"), metadata: await count("metadata") };
}

interface Group {
  before: number;
  /** Only these accounts (a group), or every account except these (the default). */
  only?: string[];
  except?: string[];
}

function groupsOf(cutoffs: PurgeCutoffs): Group[] {
  const except = cutoffs.groups.flatMap((group) => group.accountSids);
  return [
    { before: cutoffs.defaultBefore, except },
    ...cutoffs.groups.map((group) => ({ before: group.before, only: group.accountSids })),
  ];
}

/**
 * The messages due in one group. Content: unpurged final messages whose last change (the one that
 * made them final) is older than the cutoff, by the partial index over unpurged messages. Metadata:
 * the same over every message, walked in SID order (SIDs start with the creation time, which is
 * before the last change, so `sid < EM{cutoff}` bounds the scan to old messages).
 */
function dueQuery(db: Kysely<Database>, kind: PurgeKind, group: Group) {
  let query = db
    .selectFrom("email_messages")
    .select("sid")
    .where("status", "in", [...FINAL_STATUSES])
    .where("date_updated", "<", group.before);
  if (kind === "content") query = query.where("content_purged_at", "is", null);
  else query = query.where("sid", "<", `EM${group.before.toString(16).padStart(12, "0")}`);
  if (group.only) query = query.where("account_sid", "in", group.only);
  if (group.except && group.except.length > 0) query = query.where("account_sid", "not in", group.except);
  return query;
}

async function dueSids(db: Kysely<Database>, kind: PurgeKind, cutoffs: PurgeCutoffs, limit: number) {
  const sids: string[] = [];
  for (const group of groupsOf(cutoffs)) {
    if (group.only?.length === 0) continue;
    const left = limit - sids.length;
    if (left <= 0) break;
    const ordered =
      kind === "content"
        ? dueQuery(db, kind, group).orderBy("date_updated")
        : dueQuery(db, kind, group).orderBy("sid");
    const rows = await ordered.limit(left).execute();
    sids.push(...rows.map((row) => row.sid));
  }
  return sids;
}

/**
 * Drops the content of these messages: texts, composed MIME, custom headers, attachment references
 * (and the bytes no other message uses). Addresses, subject, tags, statuses and history stay. Only
 * messages not purged yet are changed; returns how many were.
 */
async function purgeContent(
  trx: Kysely<Database>,
  sids: readonly string[],
  now: number,
): Promise<{ purged: number; blobs: number }> {
  const rows = await trx
    .selectFrom("email_messages")
    .select(["sid", "content"])
    .where("sid", "in", sids)
    .where("content_purged_at", "is", null)
    .execute();
  let purged = 0;
  for (const row of rows) {
    const result = await trx
      .updateTable("email_messages")
      .set({
        content: withoutContent(row.content),
        body_part: null,
        html_part: null,
        text_part: null,
        content_purged_at: now,
      })
      .where("sid", "=", row.sid)
      .where("content_purged_at", "is", null)
      .executeTakeFirst();
    purged += Number(result.numUpdatedRows);
  }
  const done = rows.map((row) => row.sid);
  if (done.length === 0) return { purged, blobs: 0 };
  await trx.deleteFrom("email_mime").where("message_sid", "in", done).execute();
  return { purged, blobs: await dropReferences(trx, done) };
}

/** A stored content document without what content retention removes (the texts are columns). */
function withoutContent(json: string): string {
  const content = JSON.parse(json) as Record<string, unknown>;
  return JSON.stringify({ ...content, body: null, html: null, text: null, headers: {}, attachments: [] });
}

/** Deletes the messages' attachment references, then the bytes nobody references any more. */
async function dropReferences(trx: Kysely<Database>, sids: readonly string[]): Promise<number> {
  const refs = await trx
    .selectFrom("attachment_refs")
    .select("sha256")
    .distinct()
    .where("message_sid", "in", sids)
    .execute();
  if (refs.length === 0) return 0;
  await trx.deleteFrom("attachment_refs").where("message_sid", "in", sids).execute();
  const result = await trx
    .deleteFrom("attachment_blobs")
    .where(
      "sha256",
      "in",
      refs.map((ref) => ref.sha256),
    )
    .where(({ not, exists, selectFrom }) =>
      not(
        exists(
          selectFrom("attachment_refs")
            .select("attachment_refs.sha256")
            .whereRef("attachment_refs.sha256", "=", "attachment_blobs.sha256"),
        ),
      ),
    )
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}

/** Deletes the messages and everything tied to them; Usage Records (usage_counters) are not. */
async function purgeMetadata(trx: Kysely<Database>, sids: readonly string[]) {
  const blobs = await dropReferences(trx, sids);
  for (const table of [
    "email_attempts",
    "email_mime",
    "email_tags",
    "email_events",
    "notifications",
  ] as const) {
    await trx.deleteFrom(table).where("message_sid", "in", sids).execute();
  }
  const result = await trx
    .deleteFrom("email_messages")
    .where("sid", "in", sids)
    .where("status", "in", [...FINAL_STATUSES])
    .executeTakeFirst();
  return { messages: Number(result.numDeletedRows), blobs };
}

/**
 * One batch's transaction. SQLite: BEGIN IMMEDIATE (a CLI purging beside the server waits for the
 * write lock instead of failing to upgrade). PostgreSQL: the installation's purge lock, taken with
 * try: while another process purges, this one's batch does nothing and says so (`busy`).
 */
function purgeTransaction(
  db: Kysely<Database>,
  work: (trx: Kysely<Database>) => Promise<PurgeBatchResult>,
): Promise<PurgeBatchResult> {
  if (isPostgres(db)) {
    return db.transaction().execute(async (trx) => {
      const { rows } = await sql<{ locked: boolean }>`
        select pg_try_advisory_xact_lock(${sql.raw(PURGE_LOCK_SQL)}) as locked`.execute(trx);
      if (!rows[0]?.locked) return { messages: 0, blobs: 0, busy: true };
      return work(trx);
    });
  }
  return immediateTransaction(db, work);
}

/** The purge's advisory lock, one per installation (its schema), like the account-tree lock. */
const PURGE_LOCK_SQL =
  "('x' || substr(md5('mailroom_purge_' || coalesce(current_schema(), '')), 1, 16))::bit(64)::bigint";

function isPostgres(db: Kysely<Database>): boolean {
  return db.getExecutor().adapter instanceof PostgresAdapter;
}

// ---------------------------------------------------------------- erasure

/**
 * Erases one address from the messages of these accounts: in From, To, CC, BCC and Reply-To (its
 * display name too) it becomes `replacement`; the content of each such message is purged; its
 * events and attempts name `replacement` instead; each gets an `email.erased` event (and a job for
 * every webhook that wants it). Messages not final yet are counted, not changed. One transaction
 * per `batch` messages examined.
 */
export async function eraseAddress(db: Kysely<Database>, request: ErasureRequest): Promise<ErasureResult> {
  const result: ErasureResult = { affected: 0, pending: 0 };
  if (request.accountSids.length === 0) return result;
  let after = "";
  for (;;) {
    // Every address of a message is in its content document: a match there is a candidate, checked exactly below.
    const rows = await db
      .selectFrom("email_messages")
      .select(["sid", "account_sid", "content", "status"])
      .where("account_sid", "in", request.accountSids)
      .where("sid", ">", after)
      .where(sql<boolean>`lower(content) like ${`%${likeEscape(request.address)}%`} escape '\\'`)
      .orderBy("sid")
      .limit(request.batch)
      .execute();
    if (rows.length === 0) {
      await renameInStoredAnswers(db, request);
      await db.insertInto("notifications").values(request.notification).execute();
      return result;
    }
    after = rows[rows.length - 1]?.sid ?? after;
    const matching = rows
      .map((row) => ({ row, content: JSON.parse(row.content) as AddressedContent }))
      .filter(({ content }) => mentions(content, request.address));
    const final = matching.filter(({ row }) => (FINAL_STATUSES as readonly string[]).includes(row.status));
    result.pending += matching.length - final.length;
    if (final.length === 0) continue;
    await immediateOrPlain(db, async (trx) => {
      for (const { row, content } of final) await eraseFromMessage(trx, row, content, request);
      const sids = final.map(({ row }) => row.sid);
      await purgeContent(trx, sids, request.now);
      await renameInHistory(trx, sids, request);
      for (const { row } of final) await recordErased(trx, row, request);
    });
    result.affected += final.length;
  }
}

interface AddressedContent {
  from: Mailbox;
  to: Mailbox[];
  cc: Mailbox[];
  bcc: Mailbox[];
  reply_to: Mailbox[];
  [other: string]: unknown;
}

const LISTS = ["to", "cc", "bcc", "reply_to"] as const;

function mentions(content: AddressedContent, address: string): boolean {
  const is = (mailbox: Mailbox) => mailbox.address.toLowerCase() === address;
  return is(content.from) || LISTS.some((list) => (content[list] ?? []).some(is));
}

async function eraseFromMessage(
  trx: Kysely<Database>,
  row: { sid: string },
  content: AddressedContent,
  request: ErasureRequest,
): Promise<void> {
  const replace = (mailbox: Mailbox): Mailbox =>
    mailbox.address.toLowerCase() === request.address ? { name: "", address: request.replacement } : mailbox;
  const erased: AddressedContent = { ...content, from: replace(content.from) };
  for (const list of LISTS) erased[list] = (content[list] ?? []).map(replace);
  await trx
    .updateTable("email_messages")
    .set({
      content: JSON.stringify(erased),
      from_address: formatMailboxList([erased.from]),
      to_addresses: formatMailboxList(erased.to),
    })
    .where("sid", "=", row.sid)
    .execute();
}

/**
 * The address where the messages' history names it: attempt records, events (their recipient, the
 * relay's reply quoted in them) and the Notifications about the messages.
 */
async function renameInHistory(
  trx: Kysely<Database>,
  sids: string[],
  request: ErasureRequest,
): Promise<void> {
  const pattern = addressPattern(request.address);
  await rewriteTexts(
    trx,
    "email_attempts",
    ["recipients", "response", "error_message"],
    sids,
    pattern,
    request,
  );
  await rewriteTexts(trx, "email_events", ["recipient", "response", "error_message"], sids, pattern, request);
  await rewriteTexts(trx, "notifications", ["message_text", "response_body"], sids, pattern, request);
}

/** Every spelling of the address, in any case, as a regular expression. */
function addressPattern(address: string): RegExp {
  return new RegExp(address.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"), "gi");
}

/**
 * The answers kept for Idempotency-Keys (24 hours) are copies of the messages as they were sent: the
 * address becomes `replacement` there too, so a replay shows what GET shows after the erasure.
 */
async function renameInStoredAnswers(db: Kysely<Database>, request: ErasureRequest): Promise<void> {
  const pattern = addressPattern(request.address);
  const keys = await db
    .selectFrom("idempotency_keys")
    .select(["account_sid", "idem_key", "response_body"])
    .where("account_sid", "in", request.accountSids)
    .where(sql<boolean>`lower(response_body) like ${`%${likeEscape(request.address)}%`} escape '\\'`)
    .execute();
  for (const key of keys) {
    await db
      .updateTable("idempotency_keys")
      .set({ response_body: (key.response_body ?? "").replace(pattern, request.replacement) })
      .where("account_sid", "=", key.account_sid)
      .where("idem_key", "=", key.idem_key)
      .execute();
  }
}

/** Replaces the address in these text columns of the messages' rows of `table` (rows keyed by `sid`). */
async function rewriteTexts(
  trx: Kysely<Database>,
  table: "email_attempts" | "email_events" | "notifications",
  columns: string[],
  sids: string[],
  pattern: RegExp,
  request: ErasureRequest,
): Promise<void> {
  // Three tables, the same work: their columns are named by the callers, so plain SQL.
  const { rows } = await sql<Record<string, string | null>>`
    select sid, ${sql.join(columns.map((column) => sql.ref(column)))} from ${sql.table(table)}
    where message_sid in (${sql.join(sids)})`.execute(trx);
  for (const row of rows) {
    const patch: Record<string, string | null> = {};
    for (const column of columns) {
      const text = row[column] ?? null;
      const fixed = text === null ? null : text.replace(pattern, request.replacement);
      if (fixed !== text) patch[column] = fixed;
    }
    const changes = Object.entries(patch);
    if (changes.length === 0) continue;
    await sql`update ${sql.table(table)}
      set ${sql.join(changes.map(([column, value]) => sql`${sql.ref(column)} = ${value}`))}
      where sid = ${row.sid}`.execute(trx);
  }
}

export const ERASED_EVENT = "email.erased";

/** The message's `email.erased` event, and a job for each enabled webhook of its account that wants it. */
async function recordErased(
  trx: Kysely<Database>,
  row: { sid: string; account_sid: string },
  request: ErasureRequest,
): Promise<void> {
  const sid = newOrderedSid("EV", request.now);
  await trx
    .insertInto("email_events")
    .values({
      sid,
      account_sid: row.account_sid,
      message_sid: row.sid,
      type: ERASED_EVENT,
      recipient: request.replacement,
      date_created: request.now,
      smtp_code: null,
      response: null,
      error_code: null,
      error_message: null,
      retry_at: null,
    })
    .execute();
  const hooks = await trx
    .selectFrom("webhooks")
    .select(["sid", "events"])
    .where("account_sid", "=", row.account_sid)
    .where("enabled", "=", 1)
    .execute();
  for (const hook of hooks) {
    if (hook.events !== null && !`,${hook.events},`.includes(`,${ERASED_EVENT},`)) continue;
    await trx
      .insertInto("webhook_queue")
      .values({
        sid: `${sid}${hook.sid}`,
        account_sid: row.account_sid,
        webhook_sid: hook.sid,
        event_sid: sid,
        message_sid: row.sid,
        created_at: request.now,
        due_at: request.now,
      })
      .execute();
  }
}

function immediateOrPlain<T>(db: Kysely<Database>, work: (trx: Kysely<Database>) => Promise<T>): Promise<T> {
  return isPostgres(db) ? db.transaction().execute(work) : immediateTransaction(db, work);
}

function likeEscape(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}
