import assert from "node:assert/strict";
import { statSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import BetterSqlite3 from "better-sqlite3";
import { openSqliteStore } from "../src/store/sqlite.js";

// SQLite gives the space of purged rows back (issue 16): new files are made INCREMENTAL, older ones
// converted once, and giveSpaceBack hands free pages back to the file system.
const INCREMENTAL = 2;

async function withDir(work: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "mailroom-vacuum-test-"));
  try {
    await work(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const autoVacuum = (file: string) => {
  const db = new BetterSqlite3(file, { readonly: true });
  try {
    return db.pragma("auto_vacuum", { simple: true });
  } finally {
    db.close();
  }
};

test("a new file is INCREMENTAL; a file made before is converted when a writer opens it", async () => {
  await withDir(async (dir) => {
    const fresh = join(dir, "fresh.db");
    const store = openSqliteStore(fresh);
    await store.migrate();
    await store.close();
    assert.equal(autoVacuum(fresh), INCREMENTAL);

    const older = join(dir, "older.db");
    const legacy = new BetterSqlite3(older);
    legacy.exec("create table leftover (x text); insert into leftover values ('kept')");
    legacy.close();
    assert.equal(autoVacuum(older), 0, "SQLite's default is NONE");
    const reopened = openSqliteStore(older);
    await reopened.migrate();
    await reopened.close();
    assert.equal(autoVacuum(older), INCREMENTAL);
    const check = new BetterSqlite3(older, { readonly: true });
    assert.deepEqual(
      check.prepare("select x from leftover").all(),
      [{ x: "kept" }],
      "the VACUUM keeps the data",
    );
    check.close();
  });
});

test("giveSpaceBack returns the free pages of deleted rows to the file system", async () => {
  await withDir(async (dir) => {
    const file = join(dir, "space.db");
    const store = openSqliteStore(file);
    await store.migrate();
    const raw = new BetterSqlite3(file, { timeout: 10_000 });
    raw.exec("create table filler (x blob)");
    const insert = raw.prepare("insert into filler values (randomblob(4000))");
    raw.transaction(() => {
      for (let i = 0; i < 2000; i++) insert.run();
    })();
    raw.exec("delete from filler");
    raw.pragma("wal_checkpoint(TRUNCATE)");
    const free = raw.pragma("freelist_count", { simple: true }) as number;
    const before = statSync(file).size;
    const pageSize = raw.pragma("page_size", { simple: true }) as number;
    assert.ok(free * pageSize > 7_000_000, `deleting 8 MB frees pages (${free} of ${pageSize} bytes)`);

    let given = 0;
    for (let step = 0; step < 10 && given < free; step++) given += await store.giveSpaceBack(500);
    raw.pragma("wal_checkpoint(TRUNCATE)");
    assert.equal(given, free, "every free page was given back, 500 at a time");
    assert.equal(raw.pragma("freelist_count", { simple: true }), 0);
    assert.ok(
      statSync(file).size < before - 4_000_000,
      `the file shrank (${before} → ${statSync(file).size})`,
    );
    raw.close();
    await store.close();
  });
});
