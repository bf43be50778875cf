import { type Kysely, sql } from "kysely";
import { findInAccount } from "./account-rows.js";
import { containsPattern } from "./like-pattern.js";
import { datedPage } from "./paged.js";
import type { Database } from "./schema.js";
import type { NotificationFilter, NotificationRow, Page, UsageDayCount, UsageQuery } from "./types.js";

/**
 * The reads behind Restcomm's Notifications and Usage Records. The API runs them in SQLite's reader
 * thread (ThreadedStore.read), like the message lists. Notifications use the index
 * notifications_account (account, date_created, sid); usage sums usage_counters' shards over the
 * primary key's (account, day, …) range, never a scan of the messages.
 */
export async function listNotifications(
  db: Kysely<Database>,
  filter: NotificationFilter,
  offset: number,
  limit: number,
): Promise<Page<NotificationRow>> {
  let matching = db.selectFrom("notifications").where("account_sid", "=", filter.accountSid);
  if (filter.errorCode !== undefined) matching = matching.where("error_code", "=", filter.errorCode);
  if (filter.log !== undefined) matching = matching.where("log", "=", filter.log);
  if (filter.createdFrom !== undefined) matching = matching.where("date_created", ">=", filter.createdFrom);
  if (filter.createdBefore !== undefined)
    matching = matching.where("date_created", "<", filter.createdBefore);
  if (filter.messageText !== undefined) {
    matching = matching.where(
      sql<boolean>`lower(message_text) like ${containsPattern(filter.messageText)} escape '\\'`,
    );
  }
  if (filter.requestUrl !== undefined) matching = matching.where("request_url", "=", filter.requestUrl);
  return datedPage(matching, "desc", offset, limit);
}

export function findNotification(
  db: Kysely<Database>,
  accountSid: string,
  sid: string,
): Promise<NotificationRow | undefined> {
  return findInAccount(db, "notifications", accountSid, sid);
}

export async function usageByDay(db: Kysely<Database>, query: UsageQuery): Promise<UsageDayCount[]> {
  if (query.categories.length === 0) return [];
  const rows = await db
    .selectFrom("usage_counters")
    .select(["day", "category"])
    .select((eb) => eb.fn.sum<number | string>("count").as("n"))
    .where("account_sid", "=", query.accountSid)
    .where("day", ">=", query.firstDay)
    .where("day", "<=", query.lastDay)
    .where("category", "in", query.categories)
    .groupBy(["day", "category"])
    .orderBy("day")
    .execute();
  // PostgreSQL answers a bigint sum as numeric (text in node-postgres).
  return rows.map((row) => ({ day: row.day, category: row.category, count: Number(row.n) }));
}
