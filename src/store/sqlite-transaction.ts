import { type Kysely, sql } from "kysely";
import type { Database } from "./schema.js";

/** `work` inside BEGIN IMMEDIATE … COMMIT on the store's one connection (rolled back if it throws). */
export function immediateTransaction<T>(
  db: Kysely<Database>,
  work: (conn: Kysely<Database>) => Promise<T>,
): Promise<T> {
  return db.connection().execute(async (conn) => {
    await sql`begin immediate`.execute(conn);
    try {
      const result = await work(conn);
      await sql`commit`.execute(conn);
      return result;
    } catch (error) {
      await sql`rollback`.execute(conn).catch(() => {});
      throw error;
    }
  });
}
