import { Kysely, PostgresDialect, sql } from "kysely";
import pg from "pg";
import type { Database } from "./schema.js";
import { Store, type StoreDialect } from "./store.js";

const QUEUED_CHANNEL = "mailroom_queued";

// int8 columns (our millisecond times) fit in a double for the next 280,000 years: parse them as numbers.
const types = {
  getTypeParser(oid: number, format?: "text" | "binary") {
    if (oid === pg.types.builtins.INT8) return (value: string) => Number(value);
    return pg.types.getTypeParser(oid, format);
  },
};

export interface PostgresOptions {
  url: string;
  poolSize: number;
}

/** Opens the PostgreSQL store shared by every Mailroom process pointed at the same database. */
export function openPostgresStore(options: PostgresOptions): Store {
  const pool = new pg.Pool({ connectionString: options.url, max: options.poolSize, types });
  // An idle client losing its connection must not crash the process; the pool replaces it.
  pool.on("error", () => {});
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  let listener: pg.Client | undefined;

  const dialect: StoreDialect = {
    name: "postgres",

    async claimDue(kysely, owner, now, leaseMs, limit) {
      // SKIP LOCKED lets several processes claim side by side without waiting on each other's rows.
      const result = await sql<{ message_sid: string }>`
        with due as (
          select message_sid from delivery_queue
          where due_at <= ${now} and (lease_expires_at is null or lease_expires_at < ${now})
          order by due_at
          limit ${limit}
          for update skip locked
        ), leased as (
          update delivery_queue q set lease_owner = ${owner}, lease_expires_at = ${now + leaseMs}
          from due where q.message_sid = due.message_sid
          returning q.message_sid
        )
        update email_messages m set status = 'sending', date_updated = ${now}
        from leased where m.sid = leased.message_sid
        returning m.sid as message_sid`.execute(kysely);
      return result.rows.map((row) => row.message_sid);
    },

    async notifyQueued(kysely) {
      await sql`select pg_notify(${QUEUED_CHANNEL}, '')`.execute(kysely);
    },

    async listenQueued(onQueued) {
      listener = new pg.Client({ connectionString: options.url });
      listener.on("error", () => {});
      await listener.connect();
      listener.on("notification", () => onQueued());
      await listener.query(`listen ${QUEUED_CHANNEL}`);
      const client = listener;
      return async () => {
        listener = undefined;
        await client.end().catch(() => {});
      };
    },

    async close() {
      await listener?.end().catch(() => {});
    },
  };
  return new Store(db, dialect);
}
