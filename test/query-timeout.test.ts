import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, test } from "node:test";
import BetterSqlite3 from "better-sqlite3";
import pg from "pg";
import { newSid } from "../src/domain/ids.js";
import { ThreadedStore } from "../src/store/threaded-store.js";
import { isQueryTimeout } from "../src/store/unavailable.js";
import { API, request, sendEmail, startMailroom } from "./helpers/mailroom.js";
import { emailRow, insertAccount } from "./helpers/store-rows.js";
import { openTestStore, storeVariants } from "./helpers/stores.js";

const [, postgres] = await storeVariants();

describe("query timeouts (SQLite)", () => {
  test("an API read that overruns MAILROOM_QUERY_TIMEOUT_MS fails as a timeout; writes and later reads go on", async () => {
    const env = await openTestStore("sqlite");
    // Far below what scanning 20,000 messages takes: the list cannot finish in time.
    const store = new ThreadedStore({ ...env.location, queryTimeoutMs: 1 });
    try {
      const account = await insertAccount(env.store, "scanned@example.org");
      const db = new BetterSqlite3(join(env.location.dataDir, "mailroom.db"));
      const columns = Object.keys(emailRow(account));
      const insert = db.prepare(
        `insert into email_messages (${columns.join(", ")}) values (${columns.map(() => "?").join(", ")})`,
      );
      db.transaction(() => {
        for (let i = 0; i < 20_000; i++) {
          const row = emailRow(account, { sid: newSid("EM"), to_addresses: `rcpt${i}@example.com` });
          insert.run(columns.map((column) => (row as Record<string, unknown>)[column] ?? null));
        }
      })();
      db.close();

      const reads = [1, 2, 3].map(() => store.listEmails({ accountSid: account, to: "nowhere" }, 0, 1));
      for (const read of await Promise.allSettled(reads)) {
        assert.equal(read.status, "rejected");
        assert.ok(isQueryTimeout(read.reason), String(read.reason));
      }
      // The reads ran in their own thread: the writer answers.
      await store.acceptEmail(emailRow(account));
      assert.equal((await env.store.listEmails({ accountSid: account }, 0, 1)).total, 20_001);
    } finally {
      await store.close();
      await env.cleanup();
    }
  });
});

describe("query timeouts (PostgreSQL)", { skip: postgres?.skip ?? "no PostgreSQL variant" }, () => {
  // Without a statement timeout the list would wait for the lock as long as the test holds it.
  test("a query that waits past MAILROOM_QUERY_TIMEOUT_MS is stopped by the server: 503 with code 20505", {
    timeout: 60_000,
  }, async () => {
    const server = await startMailroom({ store: "postgres", env: { MAILROOM_QUERY_TIMEOUT_MS: "300" } });
    const blocker = new pg.Client({ connectionString: server.databaseUrl });
    await blocker.connect();
    try {
      const sent = await sendEmail(server, server.admin);
      assert.equal(sent.status, 200);
      // A table lock held elsewhere: the list waits for it, until its statement_timeout.
      await blocker.query("begin");
      await blocker.query("lock table email_messages in access exclusive mode");
      const list = await request(server, "GET", `${API}/Accounts/${server.admin.sid}/Email/Messages.json`, {
        auth: server.admin,
      });
      assert.equal(list.status, 503, list.text);
      assert.equal(list.json.code, 20505);
      assert.equal(list.headers.get("x-mailroom-error-code"), "20505");
      await blocker.query("rollback");
      const after = await request(server, "GET", `${API}/Accounts/${server.admin.sid}/Email/Messages.json`, {
        auth: server.admin,
      });
      assert.equal(after.status, 200);
    } finally {
      await blocker.end();
      await server.close();
    }
  });
});
