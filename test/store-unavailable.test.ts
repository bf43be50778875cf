import assert from "node:assert/strict";
import { createServer } from "node:net";
import { describe, test } from "node:test";
import { openPostgresStore } from "../src/store/postgres.js";
import { ThreadedStore } from "../src/store/threaded-store.js";
import { isStoreUnavailable } from "../src/store/unavailable.js";
import { runCli } from "./helpers/cli.js";
import { API, type ApiResponse, request, sendEmail, startMailroom } from "./helpers/mailroom.js";
import { createTestSchema, startPostgresProxy } from "./helpers/postgres.js";
import { emailRow, insertAccount } from "./helpers/store-rows.js";
import { storeVariants } from "./helpers/stores.js";

async function waitFor(what: string, condition: () => Promise<boolean>, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function assertStoreUnavailable(response: ApiResponse): void {
  assert.equal(response.status, 503, response.text);
  assert.equal(response.json.code, 20503);
  assert.equal(response.json.more_info, "/restcomm/errors/20503.html");
  assert.equal(response.headers.get("x-mailroom-error-code"), "20503");
}

/** A TCP port on which nothing listens (bound, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no TCP address");
  return address.port;
}

const [, postgres] = await storeVariants();
describe("PostgreSQL unreachable", { skip: postgres?.skip ?? "no PostgreSQL variant" }, () => {
  test("a running server answers 503 with code 20503 while the database is gone, then recovers", async () => {
    const schema = await createTestSchema();
    const proxy = await startPostgresProxy(schema.url);
    // The server did not create the schema, so closing it removes only its temp data dir.
    const server = await startMailroom({ databaseUrl: proxy.url, env: { MAILROOM_DATABASE_POOL_SIZE: "4" } });
    try {
      const account = await server.createAccount("outage@example.org", server.admin.sid);
      const before = await sendEmail(server, account, { Subject: "before the outage" });
      assert.equal(before.status, 200);

      proxy.cut();
      assertStoreUnavailable(await sendEmail(server, account, { Subject: "during the outage" }));
      assertStoreUnavailable(
        await request(
          server,
          "GET",
          `${API}/Accounts/${account.sid}/Email/Messages/${before.json.sid}.json`,
          {
            auth: account,
          },
        ),
      );
      const ready = await request(server, "GET", "/readyz");
      assert.equal(ready.status, 503);
      assert.equal(ready.json.status, "unavailable");
      assert.equal((await request(server, "GET", "/healthz")).status, 200, "the process itself is alive");

      proxy.restore();
      await waitFor(
        "/readyz to answer 200",
        async () => (await request(server, "GET", "/readyz")).status === 200,
      );
      const after = await sendEmail(server, account, { Subject: "after the outage" });
      assert.equal(after.status, 200);

      const list = await request(server, "GET", `${API}/Accounts/${account.sid}/Email/Messages.json`, {
        auth: account,
      });
      assert.deepEqual(list.json.messages.map((m: { subject: string }) => m.subject).sort(), [
        "after the outage",
        "before the outage",
      ]);
    } finally {
      await server.close();
      await proxy.close();
      await schema.drop();
    }
  });

  test("a database lost in the middle of a burst: every acknowledged message is stored, the rest get 503", async () => {
    const schema = await createTestSchema();
    const proxy = await startPostgresProxy(schema.url);
    const server = await startMailroom({ databaseUrl: proxy.url });
    try {
      const account = await server.createAccount("burst-outage@example.org", server.admin.sid);
      const total = 300;
      const responses: ApiResponse[] = [];
      let next = 0;
      const sender = async () => {
        while (next < total) {
          const i = next++;
          responses.push(await sendEmail(server, account, { Subject: `burst ${i}` }));
          if (responses.length === 100) proxy.cut();
          if (responses.length === 200) proxy.restore();
        }
      };
      await Promise.all(Array.from({ length: 16 }, sender));

      const statuses = new Map<number, number>();
      for (const r of responses) statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      assert.deepEqual(
        [...statuses.keys()].sort(),
        [200, 503],
        `only 200 and 503: ${JSON.stringify([...statuses])}`,
      );
      for (const r of responses.filter((r) => r.status === 503)) assertStoreUnavailable(r);

      await waitFor(
        "/readyz to answer 200",
        async () => (await request(server, "GET", "/readyz")).status === 200,
      );
      const stored = new Set<string>();
      const list = await request(
        server,
        "GET",
        `${API}/Accounts/${account.sid}/Email/Messages.json?PageSize=1000`,
        {
          auth: account,
        },
      );
      for (const m of list.json.messages as Array<{ sid: string }>) stored.add(m.sid);
      const acknowledged = responses.filter((r) => r.status === 200).map((r) => r.json.sid as string);
      assert.deepEqual(
        acknowledged.filter((sid) => !stored.has(sid)),
        [],
        "an acknowledged message is never lost",
      );
      // A 503 may still have been stored (the commit went through, its reply did not): at-least-once.
      assert.ok(stored.size >= acknowledged.length);
    } finally {
      await server.close();
      await proxy.close();
      await schema.drop();
    }
  });

  test("accepts queued together while the database is gone all fail fast as unavailable", async () => {
    const schema = await createTestSchema();
    const proxy = await startPostgresProxy(schema.url);
    const store = openPostgresStore({ url: proxy.url, poolSize: 2 });
    try {
      await store.migrate();
      const account = await insertAccount(store, "group@example.org");
      proxy.cut();
      const results = await Promise.allSettled(
        Array.from({ length: 50 }, () => store.acceptEmail(emailRow(account))),
      );
      for (const result of results) {
        assert.equal(result.status, "rejected");
        assert.ok(isStoreUnavailable(result.reason), String(result.reason));
      }
      proxy.restore();
      await waitFor("the store to answer", () =>
        store.ping().then(
          () => true,
          () => false,
        ),
      );
      assert.equal((await store.listEmails({ accountSid: account }, 0, 100)).total, 0);
    } finally {
      await store.close();
      await proxy.close();
      await schema.drop();
    }
  });

  test("`mailroom serve` pointed at a database that is not there stops with a clear message", async () => {
    const port = await closedPort();
    const result = await runCli(["serve"], {
      MAILROOM_DATABASE_URL: `postgres://postgres@127.0.0.1:${port}/test`,
      MAILROOM_PORT: "0",
      MAILROOM_LOG_LEVEL: "silent",
    });
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /cannot connect to PostgreSQL at 127\.0\.0\.1:\d+\/test: .*ECONNREFUSED/i);
  });
});

describe("the store thread", () => {
  test("a store thread that cannot start fails every call as unavailable, saying why, and closes", async () => {
    // A data directory under a file cannot be created: the thread dies as it opens the database.
    const store = new ThreadedStore({
      dataDir: "/dev/null/mailroom",
      databaseUrl: undefined,
      databasePoolSize: 1,
    });
    const failure = await store.migrate().then(
      () => assert.fail("migrate should fail"),
      (error: unknown) => error,
    );
    assert.ok(isStoreUnavailable(failure), String(failure));
    assert.match(String((failure as Error).message), /store is unavailable.*\/dev\/null/);
    await assert.rejects(store.countAccounts(), (error) => isStoreUnavailable(error));
    await store.close();
  });
});
