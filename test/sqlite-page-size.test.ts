import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import BetterSqlite3 from "better-sqlite3";
import { newSid } from "../src/domain/ids.js";
import { openSqliteStore, PAGE_SIZE } from "../src/store/sqlite.js";
import { emailRow, insertAccount } from "./helpers/store-rows.js";

// A new SQLite file gets PAGE_SIZE pages (fewer WAL writes per message, docs/performance.md); a file
// made with SQLite's 4 KiB pages before keeps them, and works as before.

async function withDir(work: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "mailroom-page-size-test-"));
  try {
    await work(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const pageSize = (file: string) => {
  const db = new BetterSqlite3(file, { readonly: true });
  try {
    return db.pragma("page_size", { simple: true });
  } finally {
    db.close();
  }
};

/** Stores a message and reads it back through the store. */
async function roundTrip(file: string): Promise<void> {
  const store = openSqliteStore(file);
  try {
    await store.migrate();
    const account = await insertAccount(store, `${newSid("AC")}@example.org`);
    const row = emailRow(account);
    await store.acceptEmail(row);
    const found = await store.findEmail(account, row.sid);
    assert.equal(found?.sid, row.sid);
    assert.equal(found?.body_part, row.body_part);
  } finally {
    await store.close();
  }
}

test("a new file gets PAGE_SIZE pages", async () => {
  await withDir(async (dir) => {
    const file = join(dir, "mailroom.db");
    await roundTrip(file);
    assert.equal(PAGE_SIZE, 8192);
    assert.equal(pageSize(file), PAGE_SIZE);
  });
});

test("a file made with 4 KiB pages keeps them and works as before", async () => {
  await withDir(async (dir) => {
    const file = join(dir, "mailroom.db");
    // What an older Mailroom made: SQLite's default page size, WAL mode, incremental vacuum.
    const older = new BetterSqlite3(file);
    older.pragma("auto_vacuum = INCREMENTAL");
    older.pragma("journal_mode = WAL");
    older.exec("create table leftover (x text); insert into leftover values ('kept')");
    older.close();
    assert.equal(pageSize(file), 4096);
    await roundTrip(file);
    await roundTrip(file);
    assert.equal(pageSize(file), 4096);
    const check = new BetterSqlite3(file, { readonly: true });
    assert.deepEqual(check.prepare("select x from leftover").all(), [{ x: "kept" }]);
    check.close();
  });
});
