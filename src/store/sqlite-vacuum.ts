import type BetterSqlite3 from "better-sqlite3";

/**
 * SQLite keeps the pages a delete frees inside the file for later inserts; the file itself never
 * shrinks unless auto_vacuum is on. INCREMENTAL mode lets the purge hand free pages back in small
 * steps (`PRAGMA incremental_vacuum(N)`), between batches, without a full VACUUM's exclusive lock.
 *
 * The mode can only be chosen before the first table exists; an older file gets it by one VACUUM
 * (it rewrites the whole file, needs free disk space of its size, and cannot run inside a
 * transaction, so not in a migration). That happens once, when a writer first opens it; if another
 * connection holds the file (a server running while the CLI opens it), it is left for the next start.
 */
export function useIncrementalVacuum(connection: BetterSqlite3.Database): void {
  const INCREMENTAL = 2;
  if (connection.pragma("auto_vacuum", { simple: true }) === INCREMENTAL) return;
  connection.pragma("auto_vacuum = INCREMENTAL");
  const tables = connection.prepare("select count(*) as n from sqlite_master where type = 'table'").get() as {
    n: number;
  };
  if (tables.n === 0) return;
  try {
    connection.exec("VACUUM");
  } catch {
    // Busy: another connection uses the file. The mode is applied by a later open's VACUUM.
  }
}

/**
 * Frees up to `maxPages` pages (4 KiB each by default) at the end of the file; returns how many it
 * freed. Committed without an fsync of its own (like a purge batch): losing it in a crash loses no
 * data, only space given back, which the next step gives back again.
 */
export function incrementalVacuum(connection: BetterSqlite3.Database, maxPages: number): number {
  const before = connection.pragma("freelist_count", { simple: true }) as number;
  if (before === 0) return 0;
  const level = connection.pragma("synchronous", { simple: true }) as number;
  connection.pragma("synchronous = NORMAL");
  try {
    // pragma() steps the statement to its end: run() would free one page per call.
    connection.pragma(`incremental_vacuum(${Math.max(1, Math.floor(maxPages))})`);
  } finally {
    connection.pragma(`synchronous = ${level}`);
  }
  const after = connection.pragma("freelist_count", { simple: true }) as number;
  return before - after;
}
