import { mkdirSync } from "node:fs";
import { join } from "node:path";

/** The file a running server keeps locked, beside mailroom.db. */
export const LOCK_FILE = "mailroom.lock";

/** A second server found the data dir taken. */
export class DataDirLocked extends Error {}

export interface DataDirLock {
  release(): void;
}

/**
 * Makes this process the only server on an SQLite data dir, for as long as it runs: two servers on one
 * file would each think they own its queue (item 17 of issue 12, and why a start may reclaim every lease).
 *
 * The lock is SQLite's own: an open transaction, `BEGIN EXCLUSIVE`, on a database of its own
 * (mailroom.lock, empty). It is an OS file lock (fcntl), so the kernel drops it the moment the process
 * ends, however it ends (kill -9 included): a restart is never refused by a lock left behind. A file
 * with a PID in it would need a liveness check that PID reuse defeats (in a container the server is
 * often PID 1 every time), and mkdir/mtime locks (proper-lockfile) are taken over only once stale,
 * which either delays a restart or lets a stalled server lose its lock. The lock is on a file of its
 * own, not mailroom.db, so that the `mailroom accounts` commands still open the database beside a
 * running server. SQLite tracks its locks per file across the connections of one process, so a second
 * server started in the same process (tests) is refused too.
 */
export async function lockDataDir(dataDir: string): Promise<DataDirLock> {
  // Loaded here, not at the top: the HTTP thread loads no database driver unless it must (open-store.ts).
  const { default: BetterSqlite3 } = await import("better-sqlite3");
  mkdirSync(dataDir, { recursive: true });
  const file = join(dataDir, LOCK_FILE);
  // timeout 0: a lock that is held fails at once instead of waiting.
  const db = new BetterSqlite3(file, { timeout: 0 });
  try {
    db.exec("begin exclusive");
  } catch (error) {
    db.close();
    if ((error as { code?: unknown }).code === "SQLITE_BUSY") {
      throw new DataDirLocked(
        `another Mailroom server is running on the data dir ${dataDir} (it holds ${file}); stop it first, or give this one its own MAILROOM_DATA_DIR. The mailroom accounts commands work beside a running server.`,
      );
    }
    throw error;
  }
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      db.close();
    },
  };
}
