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
  /** Where the previous batch of this pass stopped (undefined: the pass's first batch of this kind). */
  after?: PurgeCursor;
}

/**
 * A position in a pass's walk: accounts in SID order; within one, its due messages in index order
 * (by `date_created`; metadata: per final status), `sid` breaking ties.
 */
export interface PurgeCursor {
  account: string;
  /** Metadata: which of FINAL_STATUSES the walk is in. */
  status: number;
  /** The last message read: its time in the walk's order and its SID ("" before the first). */
  time: number;
  sid: string;
}

export interface PurgeBatchResult {
  /** Messages purged by this batch. */
  messages: number;
  /** Attachment contents deleted because no message uses them any more. */
  blobs: number;
  /** PostgreSQL: another process holds the purge lock; this one should end its pass. */
  busy: boolean;
  /** Where the next batch goes on, or undefined: the walk is over, nothing more is due now. */
  next?: PurgeCursor;
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
    const { sids, next } = await dueSids(trx, request);
    if (sids.length === 0) return { messages: 0, blobs: 0, busy: false, next };
    if (request.kind === "content") {
      const { purged, blobs } = await purgeContent(trx, sids, request.now);
      return { messages: purged, blobs, busy: false, next };
    }
    return { ...(await purgeMetadata(trx, sids)), busy: false, next };
  });
}

export async function countPurgeable(
  db: Kysely<Database>,
  cutoffs: Record<PurgeKind, PurgeCutoffs>,
): Promise<PurgeCounts> {
  const count = async (kind: PurgeKind) => {
    const cutoffOf = cutoffLookup(cutoffs[kind]);
    let total = 0;
    for (const account of await db.selectFrom("accounts").select("sid").execute()) {
      const before = cutoffOf(account.sid);
      const statuses = kind === "content" ? [FINAL_STATUSES] : FINAL_STATUSES.map((status) => [status]);
      for (const status of statuses) {
        const row = await dueInAccount(db, kind, account.sid, before, status)
          .clearSelect()
          .select((eb) => eb.fn.countAll<number | string>().as("n"))
          .executeTakeFirstOrThrow();
        total += Number(row.n);
      }
    }
    return total;
  };
  return { content: await count("content"), metadata: await count("metadata") };
}

/** Each account's cutoff: its group's, or the default. */
function cutoffLookup(cutoffs: PurgeCutoffs): (accountSid: string) => number {
  const groups = new Map<string, number>();
  for (const group of cutoffs.groups) for (const sid of group.accountSids) groups.set(sid, group.before);
  return (accountSid) => groups.get(accountSid) ?? cutoffs.defaultBefore;
}

/**
 * One account's due messages: final messages whose last change (the one that made them final) is
 * older than the cutoff. Both walks go by creation, bounded by the cutoff too (a message changes
 * after it is created), so that no index they read moves when a message is delivered. Content:
 * unpurged messages, by the partial index over them per account (`email_messages_unpurged_created`;
 * a purged message leaves it). Metadata: one status at a time, by the account's status index.
 */
function dueInAccount(
  db: Kysely<Database>,
  kind: PurgeKind,
  account: string,
  before: number,
  statuses: readonly string[],
) {
  const query = db
    .selectFrom("email_messages")
    .select("sid")
    .where("account_sid", "=", account)
    .where("status", "in", [...statuses])
    .where("date_updated", "<", before)
    .where("date_created", "<", before);
  return kind === "content" ? query.where("content_purged_at", "is", null) : query;
}

/** Accounts whose messages one batch looks at, at most: a batch with little due stays short too. */
const ACCOUNTS_PER_BATCH = 200;

/**
 * The next `limit` due messages of the pass's walk from `after`, and where the next batch goes on.
 * Each account is read up to its own cutoff only, and an entry the walk passes (a message older than
 * that but not final yet: queued for retries, scheduled) is read once per pass, not once per batch:
 * the cursor goes past it. No query names more than one account.
 */
async function dueSids(
  db: Kysely<Database>,
  request: PurgeBatchRequest,
): Promise<{ sids: string[]; next?: PurgeCursor }> {
  const { kind, limit } = request;
  const cutoffOf = cutoffLookup(request.cutoffs);
  const statusCount = kind === "content" ? 1 : FINAL_STATUSES.length;
  const sids: string[] = [];
  let at: PurgeCursor = request.after ?? { account: "", status: 0, time: 0, sid: "" };
  const accounts = await db
    .selectFrom("accounts")
    .select("sid")
    .where("sid", ">=", at.account)
    .orderBy("sid")
    .limit(ACCOUNTS_PER_BATCH)
    .execute();
  for (const { sid: account } of accounts) {
    if (account !== at.account) at = { account, status: 0, time: 0, sid: "" };
    const before = cutoffOf(account);
    for (; at.status < statusCount; at = { account, status: at.status + 1, time: 0, sid: "" }) {
      const statuses = kind === "content" ? FINAL_STATUSES : [FINAL_STATUSES[at.status] as string];
      const rows = await dueInAccount(db, kind, account, before, statuses)
        .select("date_created as time")
        .where(sql<boolean>`(date_created, sid) > (${at.time}, ${at.sid})`)
        .orderBy("date_created")
        .orderBy("sid")
        .limit(limit - sids.length)
        .execute();
      sids.push(...rows.map((row) => row.sid));
      const last = rows[rows.length - 1];
      if (last && sids.length >= limit)
        return { sids, next: { ...at, time: Number(last.time), sid: last.sid } };
    }
  }
  // Fewer accounts than a batch may look at: the walk is over. Otherwise the next batch goes on after the last.
  if (accounts.length < ACCOUNTS_PER_BATCH) return { sids };
  return { sids, next: { ...at, status: statusCount } };
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
  if (rows.length === 0) return { purged: 0, blobs: 0 };
  // One statement for the batch, not one per message: a hundred statements built and run cost a
  // batch more of the writer's time than the rows themselves. `column1`, `column2`: the names both
  // databases give a VALUES list's columns.
  const values = rows.map((row) => sql`(${row.sid}, ${withoutContent(row.content)})`);
  const result = await sql`
    update email_messages
    set content = v.column2, body_part = null, html_part = null, text_part = null, content_purged_at = ${now}
    from (values ${sql.join(values)}) as v
    where email_messages.sid = v.column1 and email_messages.content_purged_at is null`.execute(trx);
  const purged = Number(result.numAffectedRows ?? 0);
  const done = rows.map((row) => row.sid);
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
 * write lock instead of failing to upgrade), committed without its own fsync (`synchronous = NORMAL`
 * for this transaction only): the next accept's commit fsyncs the log with it, and a crash before
 * that loses only purges the next pass does again, never anything a client was told is stored. Half
 * the purge's fsyncs, and each one was most of a batch's time. PostgreSQL: the installation's purge
 * lock, taken with try: while another process purges, this one's batch does nothing and says so
 * (`busy`).
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
  return db.connection().execute(async (conn) => {
    const { rows } = await sql<{ synchronous: number }>`pragma synchronous`.execute(conn);
    const level = Number(rows[0]?.synchronous ?? 2);
    await sql`pragma synchronous = NORMAL`.execute(conn);
    try {
      return await immediateTransaction(conn, work);
    } finally {
      await sql`pragma synchronous = ${sql.raw(String(level))}`.execute(conn);
    }
  });
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
    // Every address of a message is in its content document, as JSON writes it: a match there is a
    // candidate, checked exactly below.
    const rows = await db
      .selectFrom("email_messages")
      .select(["sid", "account_sid", "content", "status"])
      .where("account_sid", "in", request.accountSids)
      .where("sid", ">", after)
      .where(containsText("content", inJson(request.address)))
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

/**
 * Every spelling of the address, in any case, as a regular expression: as it is (attempt and event
 * texts, Notifications), as JSON writes it (content, the recipients of an attempt, answers kept in
 * JSON) and as XML does (answers kept in XML). They differ for an address with `"` or `\\` (a
 * quoted local part, `"a b"@x.org`, stored before today's address rules) and for `&` or `'`, which
 * a plain address may hold (`o'neil@x.org`).
 */
function addressPattern(address: string): RegExp {
  const spellings = [...new Set([inJson(address), inXml(address), address])].sort(
    (a, b) => b.length - a.length,
  );
  return new RegExp(spellings.map((text) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|"), "gi");
}

/** The text as it stands inside a JSON string (JSON.stringify escapes `"`, `\\` and control characters). */
function inJson(text: string): string {
  return JSON.stringify(text).slice(1, -1);
}

/** The text as the XML answers write it (fast-xml-parser's XMLBuilder: the five entities). */
function inXml(text: string): string {
  const entities: Record<string, string> = {
    "&": "&amp;",
    "<": "&lt;",
    ">": "&gt;",
    '"': "&quot;",
    "'": "&apos;",
  };
  return text.replace(/[&<>"']/g, (c) => entities[c] as string);
}

/**
 * `column` contains one of these texts, in any case (SQLite's lower() folds only ASCII; the
 * addresses an erasure takes are ASCII).
 */
function containsText(column: "content" | "response_body", ...texts: string[]) {
  return sql<boolean>`(${sql.join(
    [...new Set(texts)].map(
      (text) => sql`lower(${sql.ref(column)}) like ${`%${likeEscape(text)}%`} escape '\\'`,
    ),
    sql` or `,
  )})`;
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
    .where(containsText("response_body", inJson(request.address), inXml(request.address)))
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
