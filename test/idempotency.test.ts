import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import BetterSqlite3 from "better-sqlite3";
import pg from "pg";
import { openStore } from "../src/store/open-store.js";
import { IDEMPOTENCY_CLAIM_LOST, type IdempotencyClaim } from "../src/store/types.js";
import { createAccountWithCli, startServeProcess } from "./helpers/cli.js";
import { FAST_RETRIES, waitForFinal } from "./helpers/delivery.js";
import {
  API,
  type ApiResponse,
  type Credentials,
  request,
  startMailroom,
  startPeer,
  type TestServer,
} from "./helpers/mailroom.js";
import { createTestSchema } from "./helpers/postgres.js";
import { SmtpSink } from "./helpers/smtp-sink.js";
import { emailRow, insertAccount, T0 } from "./helpers/store-rows.js";
import { openTestStore, storeVariants } from "./helpers/stores.js";
import { waitFor } from "./helpers/wait.js";

const DAY_MS = 24 * 60 * 60 * 1000;

function tokenOf(claim: IdempotencyClaim): string {
  assert.equal(claim.kind, "claimed");
  return claim.token;
}

/** A send with an Idempotency-Key (form body, as Restcomm clients send). */
function sendWithKey(
  server: { url: string },
  auth: Credentials,
  key: string,
  fields: Record<string, string> = {},
  suffix = ".json",
): Promise<ApiResponse> {
  return request(server, "POST", `${API}/Accounts/${auth.sid}/Email/Messages${suffix}`, {
    auth,
    headers: { "idempotency-key": key },
    form: {
      To: "john.doe@yourcompany.com",
      From: "jane.doe@yourcompany.com",
      Body: "This is a test",
      Subject: "Idempotent",
      ...fields,
    },
  });
}

async function messageCount(server: { url: string }, auth: Credentials): Promise<number> {
  const list = await request(server, "GET", `${API}/Accounts/${auth.sid}/Email/Messages.json`, { auth });
  assert.equal(list.status, 200, list.text);
  return list.json.total;
}

for (const variant of await storeVariants()) {
  describe(`Idempotency-Key (${variant.kind})`, { skip: variant.skip }, () => {
    let sink: SmtpSink;
    let server: TestServer;
    let auth: Credentials;

    before(async () => {
      sink = await SmtpSink.start();
      server = await startMailroom({ store: variant.kind, env: { MAILROOM_SMTP_URL: sink.url } });
      auth = await server.createAccount("idem@test.example");
    });
    after(async () => {
      await server?.close();
      await sink?.stop();
    });

    test("a repeat gets the stored answer byte for byte, with the same SID, and one delivery", async () => {
      const first = await sendWithKey(server, auth, "order-1001");
      assert.equal(first.status, 200, first.text);
      assert.equal(first.headers.get("idempotent-replayed"), null);
      const repeat = await sendWithKey(server, auth, "order-1001");
      assert.equal(repeat.status, 200, repeat.text);
      assert.equal(repeat.headers.get("idempotent-replayed"), "true");
      assert.equal(repeat.text, first.text, "the same bytes");
      assert.equal(repeat.headers.get("content-type"), first.headers.get("content-type"));
      assert.equal(repeat.json.sid, first.json.sid);
      const sent = await waitForFinal(server, auth, first.json.sid);
      assert.equal(sent.status, "sent");
      // A third repeat after delivery still answers what the first request answered (queued).
      const late = await sendWithKey(server, auth, "order-1001");
      assert.equal(late.text, first.text);
      assert.equal(sink.count(first.json.message_id), 1, "delivered once");
    });

    test("XML answers are stored and replayed too", async () => {
      const first = await sendWithKey(server, auth, "xml-key", {}, "");
      assert.equal(first.status, 200, first.text);
      assert.match(first.text, /^<RestcommResponse><EmailMessage>/);
      const repeat = await sendWithKey(server, auth, "xml-key", {}, "");
      assert.equal(repeat.text, first.text);
      assert.equal(repeat.headers.get("idempotent-replayed"), "true");
      // The same key asking for JSON is another request: its stored answer is XML.
      const json = await sendWithKey(server, auth, "xml-key");
      assert.equal(json.status, 409, json.text);
      assert.equal(json.json.code, 15002);
    });

    test("the same key with another body is a 409 and sends nothing", async () => {
      const before = await messageCount(server, auth);
      const first = await sendWithKey(server, auth, "reused", { Subject: "one" });
      assert.equal(first.status, 200, first.text);
      const other = await sendWithKey(server, auth, "reused", { Subject: "two" });
      assert.equal(other.status, 409, other.text);
      assert.equal(other.json.code, 15002);
      assert.match(other.json.message, /different request/);
      assert.equal(await messageCount(server, auth), before + 1);
    });

    test("a multipart repeat is recognised whatever its boundary; other attachment bytes are another request", async () => {
      const send = (bytes: string) => {
        const form = new FormData();
        for (const [name, value] of Object.entries({
          From: "jane.doe@yourcompany.com",
          To: "john.doe@yourcompany.com",
          Subject: "With a file",
          Body: "See attached",
        }))
          form.append(name, value);
        form.append("Attachment", new Blob([bytes], { type: "text/plain" }), "notes.txt");
        return request(server, "POST", `${API}/Accounts/${auth.sid}/Email/Messages.json`, {
          auth,
          headers: { "idempotency-key": "multipart-1" },
          multipart: form,
        });
      };
      const first = await send("first file");
      assert.equal(first.status, 200, first.text);
      const repeat = await send("first file");
      assert.equal(repeat.status, 200, repeat.text);
      assert.equal(repeat.headers.get("idempotent-replayed"), "true");
      assert.equal(repeat.text, first.text);
      const changed = await send("other file");
      assert.equal(changed.status, 409, changed.text);
      assert.equal(changed.json.code, 15002);
    });

    test("keys belong to their account", async () => {
      const other = await server.createAccount("idem-other@test.example");
      const mine = await sendWithKey(server, auth, "shared-name");
      const theirs = await sendWithKey(server, other, "shared-name");
      assert.equal(mine.status, 200, mine.text);
      assert.equal(theirs.status, 200, theirs.text);
      assert.notEqual(mine.json.sid, theirs.json.sid);
    });

    test("a key that is empty, too long or not printable ASCII is a 400", async () => {
      for (const key of ["", "x".repeat(257), "clé", "tab\there"]) {
        const response = await sendWithKey(server, auth, key);
        assert.equal(response.status, 400, `${JSON.stringify(key)}: ${response.text}`);
        assert.equal(response.json.code, 15001);
      }
      const longest = await sendWithKey(server, auth, "~".repeat(256));
      assert.equal(longest.status, 200, longest.text);
    });

    test("a request that fails gives its key back: the corrected repeat is processed", async () => {
      const bad = await sendWithKey(server, auth, "fix-me", { From: "not an address" });
      assert.equal(bad.status, 400, bad.text);
      const fixed = await sendWithKey(server, auth, "fix-me", { Subject: "fixed" });
      assert.equal(fixed.status, 200, fixed.text);
      assert.equal(fixed.headers.get("idempotent-replayed"), null);
    });

    test("concurrent duplicates make exactly one message", async () => {
      const before = await messageCount(server, auth);
      const answers = await Promise.all(
        Array.from({ length: 12 }, () => sendWithKey(server, auth, "burst", { Subject: "burst" })),
      );
      const ok = answers.filter((a) => a.status === 200);
      assert.ok(ok.length >= 1, "at least one is answered with the message");
      for (const answer of answers) {
        if (answer.status === 200) assert.equal(answer.json.sid, (ok[0] as ApiResponse).json.sid);
        else {
          assert.equal(answer.status, 409, answer.text);
          assert.equal(answer.json.code, 15003, "in flight");
          assert.equal(answer.headers.get("retry-after"), "1");
        }
      }
      assert.equal(await messageCount(server, auth), before + 1);
      // Once answered, every repeat gets the message.
      const repeat = await sendWithKey(server, auth, "burst", { Subject: "burst" });
      assert.equal(repeat.json.sid, (ok[0] as ApiResponse).json.sid);
    });

    if (variant.kind === "postgres") {
      test("two processes on one database: concurrent duplicates make exactly one message", async () => {
        const peer = await startPeer(server);
        try {
          const before = await messageCount(server, auth);
          const answers = await Promise.all(
            Array.from({ length: 16 }, (_, i) =>
              sendWithKey(i % 2 === 0 ? server : peer, auth, "two-processes", { Subject: "shared" }),
            ),
          );
          const sids = new Set(answers.filter((a) => a.status === 200).map((a) => a.json.sid));
          assert.equal(sids.size, 1, "one SID in every 200");
          for (const answer of answers) assert.ok([200, 409].includes(answer.status), answer.text);
          assert.equal(await messageCount(server, auth), before + 1);
        } finally {
          await peer.close();
        }
      });
    }
  });

  describe(`expired Idempotency-Keys (${variant.kind})`, { skip: variant.skip }, () => {
    test("the purge deletes expired keys, oldest first in bounded batches, and keeps live ones", async () => {
      const testStore = await openTestStore(variant.kind);
      try {
        const { store } = testStore;
        const now = Date.now();
        const claim = (key: string, at: number, hash = "h") =>
          store.claimIdempotencyKey({
            accountSid: "ACtest",
            key,
            requestHash: hash,
            now: at,
            lockMs: 60_000,
            ttlMs: DAY_MS,
          });
        for (const [i, key] of ["old-1", "old-2", "old-3"].entries()) {
          assert.equal((await claim(key, now - 2 * DAY_MS + i)).kind, "claimed");
        }
        assert.equal((await claim("live", now)).kind, "claimed");
        assert.equal(await store.purgeIdempotencyKeys(now, 2), 2, "at most the batch size");
        assert.equal(await store.purgeIdempotencyKeys(now, 10), 1);
        assert.equal(await store.purgeIdempotencyKeys(now, 10), 0);
        assert.equal((await claim("live", now, "another")).kind, "mismatch", "the live key is kept");
      } finally {
        await testStore.cleanup();
      }
    });

    test("a server purges expired keys from the start, by the expiry index", async () => {
      const server = await startMailroom({ store: variant.kind, keepData: true });
      // Answered keys, as sends leave them (an SQLite server releases unanswered claims at start).
      const answered = async (key: string, now: number) => {
        const store = server.mailroom.store;
        const claim = { accountSid: server.admin.sid, key, requestHash: "h", lockMs: 60_000, ttlMs: DAY_MS };
        const token = tokenOf(await store.claimIdempotencyKey({ ...claim, now }));
        const answer = { status: 200, contentType: "application/json", body: "{}" };
        await store.acceptEmails([], { accountSid: server.admin.sid, key, token, answer });
      };
      for (const key of ["a", "b", "c"]) await answered(key, Date.now() - 2 * DAY_MS);
      await answered("live", Date.now());
      await server.close();
      const rows = keyRows(server);
      try {
        assert.equal(await rows.count(), 4);
        const restarted = await startMailroom({
          store: variant.kind,
          dataDir: server.dataDir,
          databaseUrl: server.databaseUrl,
          admin: server.admin,
          keepData: true,
        });
        try {
          await waitFor("the expired keys purged", async () => (await rows.count()) === 1);
          assert.match(await rows.plan(), /idempotency_keys_expiry/, "the purge reads the expiry index");
        } finally {
          await restarted.close();
        }
      } finally {
        await rows.close();
        await server.removeData();
      }
    });
  });

  describe(`Idempotency-Key answers in the group commit (${variant.kind})`, { skip: variant.skip }, () => {
    test("a claim taken over fails only its own write; neighbours in the same commit are stored", async () => {
      const testStore = await openTestStore(variant.kind);
      try {
        const { store } = testStore;
        const account = await insertAccount(store, "claims@example.org");
        const claim = (now: number) =>
          store.claimIdempotencyKey({
            accountSid: account,
            key: "k",
            requestHash: "h",
            now,
            lockMs: 1000,
            ttlMs: DAY_MS,
          });
        const stale = await claim(T0);
        assert.equal(stale.kind, "claimed");
        assert.equal((await claim(T0 + 500)).kind, "in-flight", "the claim holds for its lock time");
        const taker = await claim(T0 + 2000);
        assert.equal(taker.kind, "claimed", "a claim left unanswered past its lock is taken over");
        const answer = (token: string, body: string) => ({
          accountSid: account,
          key: "k",
          token,
          answer: { status: 200, contentType: "application/json", body },
        });
        const lost = emailRow(account);
        const neighbour = emailRow(account);
        const batch = [emailRow(account), emailRow(account)];
        // One turn of the event loop: the three writes share a group commit.
        const results = await Promise.allSettled([
          store.acceptEmails(
            [{ message: lost, lease: null, tags: [], blobs: [] }],
            answer(tokenOf(stale), "stale"),
          ),
          store.acceptEmail(neighbour),
          store.acceptEmails(
            batch.map((message) => ({ message, lease: null, tags: [], blobs: [] })),
            answer(tokenOf(taker), "taker"),
          ),
        ]);
        assert.equal(results[0].status, "rejected");
        assert.equal((results[0] as PromiseRejectedResult).reason.code, IDEMPOTENCY_CLAIM_LOST);
        assert.equal(results[1].status, "fulfilled");
        assert.equal(results[2].status, "fulfilled");
        assert.equal(
          await store.findEmail(account, lost.sid),
          undefined,
          "the lost claim's message is not stored",
        );
        assert.ok(await store.findEmail(account, neighbour.sid));
        for (const message of batch) assert.ok(await store.findEmail(account, message.sid));
        const replay = await claim(T0 + 3000);
        assert.deepEqual(replay, {
          kind: "replay",
          answer: { status: 200, contentType: "application/json", body: "taker" },
        });
      } finally {
        await testStore.cleanup();
      }
    });
  });

  describe(`kill -9 after commit (${variant.kind})`, { skip: variant.skip }, () => {
    test("a retry with the key gets the stored answer, and each message is delivered once", async () => {
      const dataDir = await mkdtemp(join(tmpdir(), "mailroom-idem-crash-"));
      const schema = variant.kind === "postgres" ? await createTestSchema() : undefined;
      // Every delivery is deferred while the first process runs: nothing reaches the relay before the kill.
      const sink = await SmtpSink.start({ rules: { message: () => ({ code: 451, message: "later" }) } });
      const env: Record<string, string> = {
        MAILROOM_DATA_DIR: dataDir,
        ...(schema ? { MAILROOM_DATABASE_URL: schema.url } : {}),
        MAILROOM_HOST: "127.0.0.1",
        MAILROOM_PORT: "0",
        MAILROOM_LOG_LEVEL: "info",
        MAILROOM_SMTP_URL: sink.url,
        MAILROOM_LEASE_MS: "1000",
        ...FAST_RETRIES,
      };
      let first: { child: ChildProcess; url: string } | undefined;
      let second: { child: ChildProcess; url: string } | undefined;
      try {
        const auth = await createAccountWithCli("idem@test.example", env);
        first = await startServeProcess(env);
        const answers = new Map<string, ApiResponse>();
        for (let i = 0; i < 5; i++) {
          const key = `crash-${i}`;
          const answer = await sendWithKey(first, auth, key, { Subject: `crash ${i}` });
          assert.equal(answer.status, 200, answer.text);
          answers.set(key, answer);
        }
        // Committed and answered; the process dies before any message went out.
        first.child.kill("SIGKILL");
        await once(first.child, "exit");
        assert.equal(sink.received.length, 0);
        // A request that claimed its key and died before its commit, as the dead process left it.
        const leftover = openStore({ dataDir, databaseUrl: schema?.url, databasePoolSize: 1 });
        const orphan = await leftover.claimIdempotencyKey({
          accountSid: auth.sid,
          key: "orphan",
          requestHash: "of a request that never committed",
          now: Date.now(),
          lockMs: 60_000,
          ttlMs: DAY_MS,
        });
        await leftover.close();
        assert.equal(orphan.kind, "claimed");

        sink.rules = {};
        second = await startServeProcess(env);
        const restarted = second;
        for (const [key, answer] of answers) {
          const retry = await sendWithKey(restarted, auth, key, { Subject: `crash ${key.slice(6)}` });
          assert.equal(retry.status, 200, retry.text);
          assert.equal(retry.headers.get("idempotent-replayed"), "true");
          assert.equal(retry.text, answer.text, "the stored answer");
        }
        assert.equal(await messageCount(restarted, auth), answers.size, "nothing sent again");
        const afterOrphan = await sendWithKey(restarted, auth, "orphan");
        if (variant.kind === "sqlite") {
          // A restarted SQLite server owns the file alone: every unanswered claim was left by the dead one.
          assert.equal(afterOrphan.status, 200, afterOrphan.text);
          answers.set("orphan", afterOrphan);
        } else {
          // Other processes may be working on their claims: this one is taken over after its lock time.
          assert.equal(afterOrphan.status, 409, afterOrphan.text);
        }
        for (const answer of answers.values()) {
          await waitForFinal(restarted, auth, answer.json.sid);
          await waitFor("the message at the relay", () => sink.count(answer.json.message_id) >= 1);
          assert.equal(sink.count(answer.json.message_id), 1, "delivered once");
        }
      } finally {
        first?.child.kill("SIGKILL");
        second?.child.kill("SIGKILL");
        await sink.stop();
        await schema?.drop();
        await rm(dataDir, { recursive: true, force: true });
      }
    });
  });
}

/** Reads idempotency_keys straight from the database a (stopped or running) server uses. */
function keyRows(server: TestServer): {
  count(): Promise<number>;
  plan(): Promise<string>;
  close(): Promise<void>;
} {
  const purgeSql = `select account_sid, idem_key from idempotency_keys where expires_at < $1 order by expires_at limit 500`;
  if (server.databaseUrl) {
    const client = new pg.Client({ connectionString: server.databaseUrl });
    const connected = client.connect();
    return {
      async count() {
        await connected;
        return Number((await client.query("select count(*) as n from idempotency_keys")).rows[0].n);
      },
      async plan() {
        await connected;
        // Without this a table of four rows is read whole, index or not.
        await client.query("set enable_seqscan = off");
        const rows = (await client.query(`explain ${purgeSql}`, [Date.now()])).rows;
        return rows.map((row) => Object.values(row).join(" ")).join("\n");
      },
      async close() {
        await client.end();
      },
    };
  }
  const db = new BetterSqlite3(join(server.dataDir, "mailroom.db"), { readonly: true });
  return {
    async count() {
      return (db.prepare("select count(*) as n from idempotency_keys").get() as { n: number }).n;
    },
    async plan() {
      const rows = db.prepare(`explain query plan ${purgeSql.replace("$1", "?")}`).all(Date.now());
      return rows.map((row) => (row as { detail: string }).detail).join("\n");
    },
    async close() {
      db.close();
    },
  };
}
