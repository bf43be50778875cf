import { randomUUID } from "node:crypto";
import { Kysely, sql } from "kysely";
import pg from "pg";
import { QUEUE_KEYS, QUEUE_ORDER, type StoreDialect } from "./dialect.js";
import { migrateToLatest } from "./migrations.js";
import { SearchPathPostgresDialect } from "./postgres-introspector.js";
import { NotificationListener } from "./postgres-listener.js";
import { type RunNamed, type WakeUp, writePostgresBatch } from "./postgres-writes.js";
import type { Database } from "./schema.js";
import { Store } from "./store.js";

/**
 * The wake-up channel of one Mailroom installation, computed by the server from the connection's schema:
 * NOTIFY reaches every session of the database, so installations in different schemas of one database
 * (and parallel test runs) each get a channel of their own.
 */
const QUEUED_CHANNEL_SQL = "'mailroom_queued_' || md5(coalesce(current_schema(), ''))";

/**
 * The advisory lock that serialises account-tree changes (StoreDialect.accountsTransaction), one per
 * installation like the channel above: 64 bits of the md5 of a name that includes the schema.
 */
const ACCOUNTS_LOCK_SQL =
  "('x' || substr(md5('mailroom_accounts_' || coalesce(current_schema(), '')), 1, 16))::bit(64)::bigint";

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
  /**
   * How long a request waits for a connection (a new one, or a free one from a busy pool) before
   * failing as "store unavailable" (503). Without it, an unreachable database would hang requests.
   */
  connectTimeoutMs?: number;
  /**
   * PostgreSQL's statement_timeout for every statement of this store (MAILROOM_QUERY_TIMEOUT_MS): a
   * query that runs longer is cancelled by the server and answered 503 (20505). Migrations run without it.
   */
  statementTimeoutMs?: number;
}

/** Opens the PostgreSQL store shared by every Mailroom process pointed at the same database. */
export function openPostgresStore(options: PostgresOptions): Store {
  const connection: pg.ClientConfig = {
    connectionString: options.url,
    // Names this process's connections in pg_stat_activity; `application_name=` in the URL wins.
    application_name: "mailroom",
    connectionTimeoutMillis: options.connectTimeoutMs ?? 5000,
    ...(options.statementTimeoutMs ? { statement_timeout: options.statementTimeoutMs } : {}),
    // Notices a database host that vanished without closing the TCP connection.
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    types,
  };
  const pool = new pg.Pool({ ...connection, max: options.poolSize, idleTimeoutMillis: 30_000 });
  // A connection lost while idle: the pool drops it and reports here; nothing to do.
  pool.on("error", () => {});
  // A connection lost while checked out: pg fails the running query (the request gets its 503) and
  // also emits "error" on the client, which pg-pool leaves unhandled then, crashing the process.
  // The pool discards the dead client when it is released.
  pool.on("connect", (client) => {
    client.on("error", () => {});
  });
  // Its introspection (which Kysely's migrator uses) reads this connection's schemas only: another
  // installation's schema dropped at the wrong moment cannot fail a migration (postgres-introspector.ts).
  const db = new Kysely<Database>({ dialect: new SearchPathPostgresDialect({ pool }) });
  const listeners = new Set<NotificationListener>();
  // Straight through the pool, which Kysely shares: Kysely has no named (server-side prepared) statements.
  const runNamed: RunNamed = async (name, query) =>
    (await pool.query({ name, text: query.sql, values: query.parameters as unknown[] })).rows;
  // This store's own accepts wake its worker in-process; its listener ignores their notifications.
  const wakeUp: WakeUp = { channelSql: QUEUED_CHANNEL_SQL, origin: randomUUID() };

  const dialect: StoreDialect = {
    name: "postgres",

    async claimDue(kysely, queue, owner, now, leaseMs, limit, silentBefore, filter = sql<boolean>`true`) {
      // One statement, so the row locks last only as long as it runs. SKIP LOCKED lets several
      // processes claim side by side: each skips rows another is claiming right now, and PostgreSQL
      // re-checks the lease condition on rows changed since the statement's snapshot, so a row another
      // process has just leased is not taken again. An expired lease is claimable, and so is one whose
      // owner stopped its heartbeat (it died): within seconds instead of when the lease runs out.
      const key = sql.ref(QUEUE_KEYS[queue]);
      const table = sql.table(queue);
      const silent =
        silentBefore === null
          ? sql`false`
          : sql`lease_owner in (select owner from delivery_owners where heartbeat_at < ${silentBefore})`;
      const result = await sql<{ key: string }>`
        with due as (
          select ${key} as key from ${table}
          where due_at <= ${now} and (lease_expires_at is null or lease_expires_at < ${now} or ${silent})
            and ${filter}
          order by ${sql.join(QUEUE_ORDER[queue].map((column) => sql.ref(column)))}
          limit ${limit}
          for update skip locked
        )
        update ${table} q set lease_owner = ${owner}, lease_expires_at = ${now + leaseMs}
        from due where q.${key} = due.key
        returning q.${key} as key`.execute(kysely);
      return result.rows.map((row) => row.key);
    },

    async renewLeases(kysely, queue, owner, sids, expiresAt) {
      // SKIP LOCKED: a row locked right now is being settled by this process's own attempt batch (or
      // claimed elsewhere after its lease ran out); waiting on it could deadlock with that batch, and
      // renewing it is pointless anyway.
      const key = sql.ref(QUEUE_KEYS[queue]);
      const table = sql.table(queue);
      await sql`
        update ${table} set lease_expires_at = ${expiresAt}
        where ${key} in (
          select ${key} from ${table}
          where lease_owner = ${owner} and ${key} = any(${[...sids]}::text[])
          for update skip locked
        )`.execute(kysely);
    },

    // Two accepts in flight on separate connections (an accept arriving during a commit starts its
    // own), and attempt records beside them: see Store. Three or four lanes measured no better.
    acceptLanes: 2,
    writeBatch: (kysely, accepted, records, options) =>
      writePostgresBatch(kysely, runNamed, accepted, records, wakeUp, options?.answers),

    async listenQueued(onQueued) {
      // A dedicated connection outside the pool: LISTEN belongs to a session, and pooled sessions rotate.
      const listener = new NotificationListener(connection, QUEUED_CHANNEL_SQL, wakeUp.origin, onQueued);
      listeners.add(listener);
      await listener.start();
      return async () => {
        listeners.delete(listener);
        await listener.stop();
      };
    },

    accountsTransaction(kysely, work) {
      return kysely.transaction().execute(async (trx) => {
        // Held until commit or rollback. Every statement after it reads what the lock's previous
        // holder committed (READ COMMITTED takes a fresh snapshot per statement).
        await sql`select pg_advisory_xact_lock(${sql.raw(ACCOUNTS_LOCK_SQL)})`.execute(trx);
        return work(trx);
      });
    },

    async migrate(kysely) {
      // Kysely serialises concurrent migrators with a PostgreSQL advisory lock. Its bookkeeping tables
      // go in the schema the connection works in (the first of search_path), next to ours.
      let schema: string | null | undefined;
      try {
        const { rows } = await sql<{ schema: string | null }>`select current_schema() as schema`.execute(
          kysely,
        );
        schema = rows[0]?.schema;
      } catch (error) {
        // The first query at start-up: say which database could not be reached (never the password).
        const where = new URL(options.url);
        const reason = error instanceof Error ? error.message : String(error);
        throw new Error(`cannot connect to PostgreSQL at ${where.host}${where.pathname}: ${reason}`, {
          cause: error,
        });
      }
      // On one connection without the statement timeout: a migration may rewrite a large table, and
      // a node starting beside another waits for its migration lock as long as that one migrates.
      await kysely.connection().execute(async (conn) => {
        await sql`set statement_timeout = 0`.execute(conn);
        try {
          await migrateToLatest(conn, schema ?? undefined);
        } finally {
          await sql`reset statement_timeout`.execute(conn).catch(() => {});
        }
      });
    },

    async close() {
      const stopping = [...listeners].map((listener) => listener.stop());
      listeners.clear();
      await Promise.all(stopping);
    },
  };
  return new Store(db, dialect);
}
