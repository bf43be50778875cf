import { type Kysely, sql } from "kysely";
import type { StoreDialect } from "./dialect.js";
import { datedPage } from "./paged.js";
import type { Database } from "./schema.js";
import type { NewTemplate, Page, TemplatePatch, TemplateRow, TemplateWrite } from "./types.js";

/**
 * The queries of the Templates resource (issue 14), written once for both databases. A template is
 * read through a lineage (an account and the accounts above it: a sub-account uses its parents'
 * templates) and changed only by its own account.
 */

/**
 * Inserts the template unless its account has `limit` already or another of its templates has the
 * name. Serialised with other creates and renames (StoreDialect.accountsTransaction), so the count
 * and the name check hold across processes; the unique index is the last word either way.
 */
export function insertTemplate(
  db: Kysely<Database>,
  dialect: StoreDialect,
  template: NewTemplate,
  limit: number,
): Promise<TemplateWrite<true | "limit">> {
  return guardUnique(() =>
    dialect.accountsTransaction(db, async (trx) => {
      const row = await trx
        .selectFrom("email_templates")
        .select((eb) => eb.fn.countAll<number | string>().as("n"))
        .where("account_sid", "=", template.account_sid)
        .executeTakeFirstOrThrow();
      if (Number(row.n) >= limit) return "limit";
      if (await nameTaken(trx, template.account_sid, template.name, undefined)) return "name-taken";
      await trx.insertInto("email_templates").values(template).execute();
      return true;
    }),
  );
}

/** The template `sid` if it belongs to one of `accountSids`. */
export function findTemplate(
  db: Kysely<Database>,
  accountSids: readonly string[],
  sid: string,
): Promise<TemplateRow | undefined> {
  return db
    .selectFrom("email_templates")
    .selectAll()
    .where("sid", "=", sid)
    .where("account_sid", "in", accountSids)
    .executeTakeFirst();
}

/** The template called `name` of the first of `accountSids` that has one (nearest first). */
export async function findTemplateByName(
  db: Kysely<Database>,
  accountSids: readonly string[],
  name: string,
): Promise<TemplateRow | undefined> {
  const rows = await db
    .selectFrom("email_templates")
    .selectAll()
    .where("name", "=", name)
    .where("account_sid", "in", accountSids)
    .execute();
  for (const accountSid of accountSids) {
    const row = rows.find((r) => r.account_sid === accountSid);
    if (row) return row;
  }
  return undefined;
}

/** The templates of `accountSids`, oldest first. */
export function listTemplates(
  db: Kysely<Database>,
  accountSids: readonly string[],
  offset: number,
  limit: number,
): Promise<Page<TemplateRow>> {
  return datedPage(
    db.selectFrom("email_templates").where("account_sid", "in", accountSids),
    "asc",
    offset,
    limit,
  );
}

/**
 * Applies `patch` to the account's own template and returns it as it is now: undefined if the
 * account has no such template, "name-taken" if another of its templates has the new name.
 * date_updated becomes `now`, or one more than it was if that is not later: it only ever grows,
 * so (sid, date_updated) names one version of a template (the compiled-template cache's key).
 */
export function updateTemplate(
  db: Kysely<Database>,
  dialect: StoreDialect,
  accountSid: string,
  sid: string,
  patch: TemplatePatch,
  now: number,
): Promise<TemplateWrite<TemplateRow | undefined>> {
  return guardUnique(() =>
    dialect.accountsTransaction(db, async (trx) => {
      if (patch.name !== undefined && (await nameTaken(trx, accountSid, patch.name, sid))) {
        return "name-taken";
      }
      const result = await trx
        .updateTable("email_templates")
        .set({
          ...patch,
          date_updated: sql<number>`case when date_updated >= ${now} then date_updated + 1 else ${now} end`,
        })
        .where("sid", "=", sid)
        .where("account_sid", "=", accountSid)
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) === 0) return undefined;
      return findTemplate(trx, [accountSid], sid);
    }),
  );
}

/** Deletes the account's own template; false if it has no such template. Sent messages keep their SID. */
export async function deleteTemplate(
  db: Kysely<Database>,
  accountSid: string,
  sid: string,
): Promise<boolean> {
  const result = await db
    .deleteFrom("email_templates")
    .where("sid", "=", sid)
    .where("account_sid", "=", accountSid)
    .executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

async function nameTaken(
  trx: Kysely<Database>,
  accountSid: string,
  name: string,
  exceptSid: string | undefined,
): Promise<boolean> {
  let query = trx
    .selectFrom("email_templates")
    .select("sid")
    .where("account_sid", "=", accountSid)
    .where("name", "=", name);
  if (exceptSid !== undefined) query = query.where("sid", "!=", exceptSid);
  return (await query.executeTakeFirst()) !== undefined;
}

/** A unique-index violation (account, name) is the answer "name taken", not a server error. */
async function guardUnique<T>(write: () => Promise<TemplateWrite<T>>): Promise<TemplateWrite<T>> {
  try {
    return await write();
  } catch (error) {
    const code = typeof error === "object" && error !== null ? (error as { code?: unknown }).code : undefined;
    if (code === "SQLITE_CONSTRAINT_UNIQUE" || code === "23505") return "name-taken";
    throw error;
  }
}
