import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { Kysely, SqliteDialect, sql } from "kysely";
import { QUEUE_KEYS, QUEUE_ORDER, type StoreDialect } from "./dialect.js";
import { migrateToLatest } from "./migrations.js";
import type { Database } from "./schema.js";
import { immediateTransaction } from "./sqlite-transaction.js";
import { incrementalVacuum, useIncrementalVacuum } from "./sqlite-vacuum.js";
import { SqliteWrites } from "./sqlite-writes.js";
import { cachingStatements } from "./statement-cache.js";
import { Store } from "./store.js";

/**
 * Opens (creating if needed) the embedded SQLite store at `file`. A `reader` store only reads (the
 * API's reads, in a thread of their own: see ThreadedStore): it leaves the file's settings to the
 * writer and refuses to write.
 */
export function openSqliteStore(file: string, options: { reader?: boolean } = {}): Store {
  mkdirSync(dirname(file), { recursive: true });
  const connection = new BetterSqlite3(file);
  if (options.reader) connection.pragma("query_only = ON");
  // WAL lets readers (API, CLI) run beside the writer; synchronous=FULL fsyncs every commit,
  // which is what makes "accepted means durable" true. Group commit keeps that affordable.
  else {
    // Set before anything is written: WAL mode writes the file's header, which fixes its page size.
    if (isEmpty(connection)) connection.pragma(`page_size = ${PAGE_SIZE}`);
    // Before the first table exists, or by a one-time VACUUM of an older file (sqlite-vacuum.ts).
    useIncrementalVacuum(connection);
    connection.pragma("journal_mode = WAL");
  }
  connection.pragma("synchronous = FULL");
  connection.pragma("foreign_keys = ON");
  // The CLI may write while the server runs: wait for the lock instead of failing.
  connection.pragma("busy_timeout = 5000");
  const db = new Kysely<Database>({
    dialect: new SqliteDialect({ database: cachingStatements(connection) }),
  });
  return new Store(db, sqliteDialect(new SqliteWrites(connection), connection));
}

/**
 * The page size of a new file, in bytes (SQLite's default is 4096). A commit writes each page it
 * changed to the WAL with two system calls (the frame's header, then the page), and a checkpoint
 * copies it to the file later. A plain message changes about four pages of 4 KiB (its 1.5 KB row
 * packs two to a page; every B-tree it touches splits now and then) but under three of 8 KiB: 40%
 * fewer system calls for about 20% more bytes written (docs/performance.md, ninth round). A file
 * made with another page size keeps it: changing it rewrites the file (docs/operations.md).
 */
export const PAGE_SIZE = 8192;

/** Whether the file has nothing in it yet (a new file: its page size may still be chosen). */
function isEmpty(connection: BetterSqlite3.Database): boolean {
  return connection.pragma("page_count", { simple: true }) === 0;
}

const sqliteDialect = (writes: SqliteWrites, connection: BetterSqlite3.Database): StoreDialect => ({
  name: "sqlite",

  // One writer at a time: accepts and attempt records share one group commit (one fsync).
  acceptLanes: 1,

  async writeBatch(db, accepted, records, { alongside, handOff, answers } = {}) {
    // One process owns an SQLite file's queue; its worker is woken in-process, so no notification.
    // Holding Kysely's connection keeps its own transactions (claims, migrations) out of the way.
    if (!alongside)
      return db.connection().execute(async () => writes.write(accepted, records, handOff, answers));
    // Webhook attempt records join the batch: one commit (one fsync) for both. better-sqlite3 runs
    // the batch's own writes as a savepoint inside this transaction.
    return immediateTransaction(db, async (conn) => {
      const outcome = writes.write(accepted, records, handOff, answers);
      await alongside(conn);
      return outcome;
    });
  },

  async claimDue(db, queue, owner, now, leaseMs, limit, _silentBefore, filter = sql<boolean>`1 = 1`) {
    // SQLite has one writer at a time, so select-then-update inside a transaction is atomic. No
    // heartbeats: a server holds its data dir alone, and reclaims every lease when it starts.
    const key = QUEUE_KEYS[queue];
    return db.transaction().execute(async (trx) => {
      const due = await sql<{ key: string }>`
        select ${sql.ref(key)} as key from ${sql.table(queue)}
        where due_at <= ${now} and (lease_expires_at is null or lease_expires_at < ${now}) and ${filter}
        order by ${sql.join(QUEUE_ORDER[queue].map((column) => sql.ref(column)))}
        limit ${limit}`.execute(trx);
      const sids = due.rows.map((row) => row.key);
      if (sids.length === 0) return sids;
      await sql`
        update ${sql.table(queue)} set lease_owner = ${owner}, lease_expires_at = ${now + leaseMs}
        where ${sql.ref(key)} in (${sql.join(sids)})`.execute(trx);
      return sids;
    });
  },

  async renewLeases(db, queue, owner, sids, expiresAt) {
    const key = QUEUE_KEYS[queue];
    await sql`
      update ${sql.table(queue)} set lease_expires_at = ${expiresAt}
      where lease_owner = ${owner} and ${sql.ref(key)} in (${sql.join(sids)})`.execute(db);
  },

  async migrate(db) {
    // Kysely takes no lock on SQLite. BEGIN IMMEDIATE holds the file's write lock for the whole run,
    // so a second opener (the CLI while the server starts) waits, then finds nothing left to do.
    await immediateTransaction(db, (conn) => migrateToLatest(conn));
  },

  // The file's write lock from the first statement: a CLI closing an account and a server creating
  // one below it (two processes, two connections) take turns, and the later one reads what the
  // earlier one wrote. A deferred transaction would read first and could fail to upgrade to a writer.
  accountsTransaction: (db, work) => immediateTransaction(db, work),

  async listenQueued() {
    return async () => {};
  },
  // Holding Kysely's connection: the vacuum never runs inside another caller's open transaction.
  giveSpaceBack: (db, maxPages) =>
    db.connection().execute(async () => incrementalVacuum(connection, maxPages)),
  async close() {},
});
