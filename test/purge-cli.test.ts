import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Purger } from "../src/lifecycle/purger.js";
import { runCli } from "./helpers/cli.js";
import { getMessage, waitForFinal } from "./helpers/delivery.js";
import {
  API,
  type Credentials,
  request,
  startMailroom,
  startPeer,
  type TestServer,
} from "./helpers/mailroom.js";
import { storeVariants } from "./helpers/stores.js";
import { waitFor } from "./helpers/wait.js";

// `mailroom purge [--dry-run]` beside a running server, and two processes purging one PostgreSQL store.
const quiet = { info() {}, error() {} };

for (const variant of await storeVariants()) {
  describe(`mailroom purge (${variant.kind})`, { skip: variant.skip }, () => {
    let server: TestServer;
    let account: Credentials;
    const sids: string[] = [];
    const cli = (args: string[]) =>
      runCli(["purge", ...args], {
        MAILROOM_DATA_DIR: server.dataDir,
        ...(server.databaseUrl ? { MAILROOM_DATABASE_URL: server.databaseUrl } : {}),
        MAILROOM_CONTENT_RETENTION: "1s",
        MAILROOM_METADATA_RETENTION: "1h",
        MAILROOM_LOG_LEVEL: "silent",
      });

    before(async () => {
      // The server's own retention is long: only the CLI purges here.
      server = await startMailroom({ store: variant.kind });
      account = await server.createAccount("cli-purge@example.org", server.admin.sid);
      for (let i = 0; i < 3; i++) {
        const sent = await request(server, "POST", `${API}/Accounts/${account.sid}/Email/Messages.json`, {
          auth: account,
          form: { From: "a@example.org", To: "b@example.com", Subject: `n${i}`, Body: "content" },
        });
        assert.equal(sent.status, 200, sent.text);
        await waitForFinal(server, account, sent.json.sid);
        sids.push(sent.json.sid);
      }
    });
    after(() => server?.close());

    test("--dry-run prints the counts per kind and changes nothing; a pass purges them", async () => {
      // Past the one second of content retention the CLI is given.
      await new Promise((resolve) => setTimeout(resolve, 1200));
      const dry = await cli(["--dry-run"]);
      assert.equal(dry.code, 0, dry.stderr);
      const counted = JSON.parse(dry.stdout);
      assert.equal(counted.dry_run, true);
      assert.equal(counted.content_retention, "1s");
      assert.ok(counted.would_purge.content >= 3, dry.stdout);
      assert.equal(counted.would_purge.metadata, 0);
      for (const sid of sids) {
        const message = await getMessage(server, account, sid);
        assert.equal(message.content_purged, false, "a dry run purges nothing");
        assert.equal(message.body, "content");
      }

      const run = await cli([]);
      assert.equal(run.code, 0, run.stderr);
      const done = JSON.parse(run.stdout);
      assert.equal(done.purged.content, counted.would_purge.content);
      assert.equal(done.purged.metadata, 0);
      for (const sid of sids) assert.equal((await getMessage(server, account, sid)).content_purged, true);

      const after = JSON.parse((await cli(["--dry-run"])).stdout);
      assert.equal(after.would_purge.content, 0, "nothing is left to purge");
    });

    test("accounts update sets an account's retention, capped by its parent's", async () => {
      const env = {
        MAILROOM_DATA_DIR: server.dataDir,
        ...(server.databaseUrl ? { MAILROOM_DATABASE_URL: server.databaseUrl } : {}),
      };
      const parent = await server.createAccount("cli-parent@example.org", server.admin.sid);
      const child = await server.createAccount("cli-child@example.org", parent.sid);
      const set = await runCli(["accounts", "update", parent.sid, "--account-content-retention", "2h"], env);
      assert.equal(set.code, 0, set.stderr);
      assert.equal(JSON.parse(set.stdout).content_retention, "2h");
      const above = await runCli(["accounts", "update", child.sid, "--account-content-retention", "3h"], env);
      assert.equal(above.code, 2);
      assert.match(above.stderr, /longer than the parent account's 2h/);
    });

    test("a bad retention is refused before anything runs", async () => {
      const refused = await runCli(["purge"], {
        MAILROOM_DATA_DIR: server.dataDir,
        MAILROOM_CONTENT_RETENTION: "2d",
        MAILROOM_METADATA_RETENTION: "1d",
      });
      assert.equal(refused.code, 2);
      assert.match(refused.stderr, /MAILROOM_METADATA_RETENTION must be at least MAILROOM_CONTENT_RETENTION/);
    });
  });
}

const postgres = (await storeVariants()).find((variant) => variant.kind === "postgres");
describe("two processes purging one PostgreSQL store", { skip: postgres?.skip ?? "no PostgreSQL" }, () => {
  let first: TestServer;
  let second: TestServer;
  const total = 60;

  before(async () => {
    first = await startMailroom({ store: "postgres" });
    second = await startPeer(first);
  });
  after(async () => {
    await second?.close();
    await first?.close();
  });

  test("each message is purged by one of them only, content and row", async () => {
    const account = await first.createAccount("two@example.org", first.admin.sid);
    const sent = await Promise.all(
      Array.from({ length: total }, (_, i) =>
        request(first, "POST", `${API}/Accounts/${account.sid}/Email/Messages.json`, {
          auth: account,
          form: { From: "a@example.org", To: "b@example.com", Subject: `m${i}`, Body: "content" },
        }),
      ),
    );
    assert.ok(sent.every((response) => response.status === 200));
    await waitFor("every message to be final", async () => {
      const sents = await Promise.all(sent.map((s) => getMessage(first, account, s.json.sid)));
      return sents.every((m) => m.status === "sent");
    });
    // Each process's purger, in small batches so that the two passes overlap; retention already over.
    const purgerOf = (server: TestServer) =>
      new Purger(
        { store: server.mailroom.store, logger: quiet },
        { defaults: { contentMs: 1, metadataMs: 2 }, intervalMs: 3_600_000, batchSize: 4 },
      );
    const purgers = [purgerOf(first), purgerOf(second)];
    await new Promise((resolve) => setTimeout(resolve, 20));
    for (let round = 0; round < 50; round++) {
      await Promise.all(purgers.map((purger) => purger.runPass()));
      const sum = (key: "content" | "metadata") => purgers.reduce((n, p) => n + p.totals[key], 0);
      if (sum("metadata") >= total) break;
    }
    const [a, b] = purgers.map((purger) => purger.totals);
    assert.ok(a && b);
    assert.equal(a.content + b.content, total, `content purged once each: ${JSON.stringify([a, b])}`);
    assert.equal(a.metadata + b.metadata, total, `rows deleted once each: ${JSON.stringify([a, b])}`);
    const list = await request(first, "GET", `${API}/Accounts/${account.sid}/Email/Messages.json`, {
      auth: account,
    });
    assert.equal(list.json.total, 0);
  });
});
