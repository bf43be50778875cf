import { type Kysely, sql } from "kysely";
import type { StoreDialect } from "./dialect.js";
import type { Database, DomainsTable, NotificationsTable } from "./schema.js";
import type { Page } from "./types.js";

/**
 * The queries of the Domains resource (src/domains/), written once for both databases. Store
 * (store.ts) exposes them as MailStore methods. Domains change rarely: none of this is on a hot path.
 */

export type DomainRow = DomainsTable;
export type DomainPatch = Partial<
  Pick<
    DomainsTable,
    "status" | "dns_records" | "dkim_keys" | "date_checked" | "next_check_at" | "date_updated"
  >
>;
/** What signing needs of every domain of the installation (SigningKeys loads it). */
export type SigningDomainRow = Pick<
  DomainsTable,
  "sid" | "account_sid" | "domain_name" | "status" | "dkim_keys"
>;

export type InsertDomainOutcome = "inserted" | "limit" | "taken";

/**
 * Inserts the domain unless its account has `limit` already or another open account has this domain
 * name (a closed account's domain is deleted to make room).
 * Both checks and the insert run in the account-tree transaction, so two creates racing (in one
 * process or two) take turns; the unique index on domain_name stands behind it.
 */
export function insertDomain(
  db: Kysely<Database>,
  dialect: StoreDialect,
  domain: DomainRow,
  limit: number,
): Promise<InsertDomainOutcome> {
  return dialect.accountsTransaction(db, async (trx) => {
    const taken = await trx
      .selectFrom("domains")
      .innerJoin("accounts", "accounts.sid", "domains.account_sid")
      .select(["domains.sid", "accounts.status"])
      .where("domains.domain_name", "=", domain.domain_name)
      .executeTakeFirst();
    // A closed account (closed is final) no longer holds its domains: the name is free again.
    if (taken && taken.status !== "closed") return "taken";
    if (taken) await trx.deleteFrom("domains").where("sid", "=", taken.sid).execute();
    const row = await trx
      .selectFrom("domains")
      .select((eb) => eb.fn.countAll<number | string>().as("n"))
      .where("account_sid", "=", domain.account_sid)
      .executeTakeFirstOrThrow();
    if (Number(row.n) >= limit) return "limit";
    await trx.insertInto("domains").values(domain).execute();
    return "inserted";
  });
}

export function findDomain(
  db: Kysely<Database>,
  accountSid: string,
  sid: string,
): Promise<DomainRow | undefined> {
  return db
    .selectFrom("domains")
    .selectAll()
    .where("sid", "=", sid)
    .where("account_sid", "=", accountSid)
    .executeTakeFirst();
}

/** An account's domains, oldest first. */
export async function listDomains(
  db: Kysely<Database>,
  accountSid: string,
  offset: number,
  limit: number,
): Promise<Page<DomainRow>> {
  const matching = db.selectFrom("domains").where("account_sid", "=", accountSid);
  const [count, rows] = await Promise.all([
    matching.select(sql<number | string>`count(*)`.as("n")).executeTakeFirstOrThrow(),
    matching.selectAll().orderBy("date_created").orderBy("sid").offset(offset).limit(limit).execute(),
  ]);
  return { rows, total: Number(count.n) };
}

/**
 * Applies `patch` (and inserts `notification`, in the same transaction) and returns the domain as it
 * is now; undefined if the account has no such domain.
 */
export function updateDomain(
  db: Kysely<Database>,
  accountSid: string,
  sid: string,
  patch: DomainPatch,
  notification?: NotificationsTable,
): Promise<DomainRow | undefined> {
  return db.transaction().execute(async (trx) => {
    const result = await trx
      .updateTable("domains")
      .set(patch)
      .where("sid", "=", sid)
      .where("account_sid", "=", accountSid)
      .executeTakeFirst();
    if (Number(result.numUpdatedRows) === 0) return undefined;
    if (notification) await trx.insertInto("notifications").values(notification).execute();
    return findDomain(trx, accountSid, sid);
  });
}

export async function deleteDomain(db: Kysely<Database>, accountSid: string, sid: string): Promise<boolean> {
  const result = await db
    .deleteFrom("domains")
    .where("sid", "=", sid)
    .where("account_sid", "=", accountSid)
    .executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

/** Every domain's name, owner and keys (the signer's cache). */
export function listSigningDomains(db: Kysely<Database>): Promise<SigningDomainRow[]> {
  return db
    .selectFrom("domains")
    .select(["sid", "account_sid", "domain_name", "status", "dkim_keys"])
    .execute();
}

/**
 * Up to `limit` domains whose re-check is due, each moved on to `nextCheckAt` by this call: the move
 * is conditional on the due time read, so of several processes claiming at once exactly one gets a
 * given domain for this round (no lock is held while its DNS is asked).
 */
export async function claimDomainChecks(
  db: Kysely<Database>,
  now: number,
  nextCheckAt: number,
  limit: number,
): Promise<DomainRow[]> {
  const due = await db
    .selectFrom("domains")
    .selectAll()
    .where("next_check_at", "<=", now)
    .orderBy("next_check_at")
    .limit(limit)
    .execute();
  const claimed: DomainRow[] = [];
  for (const domain of due) {
    const result = await db
      .updateTable("domains")
      .set({ next_check_at: nextCheckAt })
      .where("sid", "=", domain.sid)
      .where("next_check_at", "=", domain.next_check_at)
      .executeTakeFirst();
    if (Number(result.numUpdatedRows) === 1) claimed.push({ ...domain, next_check_at: nextCheckAt });
  }
  return claimed;
}
