import type { Database as BetterSqliteDatabase, Statement } from "better-sqlite3";
import type { SqliteDatabase } from "kysely";

/** Enough for every query shape Mailroom issues, including `in (?, ?, …)` lists of each batch size. */
const MAX_STATEMENTS = 1000;

/**
 * Kysely's SQLite driver prepares every query anew; a profile of the delivery path showed 10% of CPU
 * in better-sqlite3's prepare. Kysely emits the same SQL text for the same query shape (values are
 * bound parameters), so prepared statements are kept by their text and reused.
 */
export function cachingStatements(connection: BetterSqliteDatabase): SqliteDatabase {
  const statements = new Map<string, Statement>();
  return {
    close: () => connection.close(),
    prepare(sql: string) {
      if (sql === "rollback") return rollbackIfOpen(connection);
      let statement = statements.get(sql);
      if (statement === undefined) {
        // Simplest bound that cannot grow without limit: start over (statements are cheap to re-prepare).
        if (statements.size >= MAX_STATEMENTS) statements.clear();
        statement = connection.prepare(sql);
        statements.set(sql, statement);
      }
      return statement;
    },
  };
}

/**
 * Kysely's ROLLBACK after a failed transaction. SQLite ends a transaction by itself when a write finds
 * the disk full (or an I/O error), and a ROLLBACK then fails with "no transaction is active", an error
 * Kysely throws in place of the one that mattered (SQLITE_FULL: 507, not 500). So it runs only while a
 * transaction is open.
 */
function rollbackIfOpen(connection: BetterSqliteDatabase) {
  const rollback = connection.prepare("rollback");
  return {
    reader: false,
    all: () => [],
    run: () => (connection.inTransaction ? rollback.run() : { changes: 0, lastInsertRowid: 0 }),
    iterate: () => [][Symbol.iterator](),
  } as unknown as Statement;
}
