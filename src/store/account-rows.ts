import type { Kysely, Selectable } from "kysely";
import type { Database } from "./schema.js";

/** The tables whose rows belong to an account and are found by SID (an `sid` and an `account_sid` column). */
type AccountOwnedTable = "webhooks" | "email_events" | "notifications";

/**
 * One row of an account by its SID: undefined when there is none, or it is another account's (the API
 * answers both with the same 404, so one tenant cannot learn another's SIDs).
 */
export function findInAccount<T extends AccountOwnedTable>(
  db: Kysely<Database>,
  table: T,
  accountSid: string,
  sid: string,
): Promise<Selectable<Database[T]> | undefined> {
  return db
    .selectFrom(table as AccountOwnedTable)
    .selectAll()
    .where("sid", "=", sid)
    .where("account_sid", "=", accountSid)
    .executeTakeFirst() as Promise<Selectable<Database[T]> | undefined>;
}
