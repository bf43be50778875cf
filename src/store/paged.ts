import { type SelectQueryBuilder, sql } from "kysely";
import type { Database } from "./schema.js";
import type { Page } from "./types.js";

/** Tables listed newest (or oldest) first by (date_created, sid). */
type DatedTable = "webhooks" | "email_events" | "webhook_deliveries" | "notifications" | "email_templates";

/**
 * One page of the rows `matching` selects, in (date_created, sid) order, with how many match in all:
 * the shape of every Restcomm list over a dated table (the count and the page run side by side).
 */
export async function datedPage<T extends DatedTable, Row>(
  matching: SelectQueryBuilder<Database, T, object>,
  order: "asc" | "desc",
  offset: number,
  limit: number,
): Promise<Page<Row>> {
  const [count, rows] = await Promise.all([
    matching.select(sql<number | string>`count(*)`.as("n")).executeTakeFirstOrThrow(),
    matching
      .selectAll()
      .orderBy(sql.ref("date_created"), order)
      .orderBy(sql.ref("sid"), order)
      .offset(offset)
      .limit(limit)
      .execute(),
  ]);
  return { rows: rows as Row[], total: Number((count as { n: number | string }).n) };
}
