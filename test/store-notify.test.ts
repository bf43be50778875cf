import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, test } from "node:test";
import { openPostgresStore } from "../src/store/postgres.js";
import { adminQuery, terminateBackends, withApplicationName } from "./helpers/postgres.js";
import { emailRow, insertAccount } from "./helpers/store-rows.js";
import { openTestStore, storeVariants } from "./helpers/stores.js";

/** Polls `condition` every 20 ms until it holds, failing after `timeoutMs` with `what`. */
async function waitFor(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function connectionsNamed(name: string): Promise<number> {
  return (await adminQuery("select 1 from pg_stat_activity where application_name = $1", [name])).length;
}

const [, postgres] = await storeVariants();
describe("PostgreSQL wake-ups (LISTEN/NOTIFY)", { skip: postgres?.skip ?? "no PostgreSQL variant" }, () => {
  test("a message accepted by one process wakes the listeners of another, once it is committed", async () => {
    const env = await openTestStore("postgres");
    try {
      const account = await insertAccount(env.store, "wake@example.org");
      const other = env.openAnother();
      let wakes = 0;
      const stop = await env.store.listenQueued(() => {
        wakes += 1;
      });
      await other.acceptEmail(emailRow(account));
      await waitFor("the wake-up", () => wakes >= 1);
      await stop();
    } finally {
      await env.cleanup();
    }
  });

  test("a store ignores its own notifications, and messages accepted leased to their process wake no one", async () => {
    const env = await openTestStore("postgres");
    try {
      const account = await insertAccount(env.store, "own@example.org");
      const a = env.store;
      const b = env.openAnother();
      let wakesA = 0;
      let wakesB = 0;
      const stopA = await a.listenQueued(() => {
        wakesA += 1;
      });
      const stopB = await b.listenQueued(() => {
        wakesB += 1;
      });
      // Leased to A: A delivers it, nobody else is told. Then an unleased one: B hears of it, A does not.
      await a.acceptEmail(emailRow(account), { owner: "a-worker", expiresAt: Date.now() + 60_000 });
      await a.acceptEmail(emailRow(account));
      await b.acceptEmail(emailRow(account));
      await waitFor("each to hear of the other's unleased message", () => wakesA >= 1 && wakesB >= 1);
      // A notification that should not come can only be waited for: on loopback one takes a few ms, so
      // half a second lets a wrong one show (and cannot fail a right implementation, however slow).
      await new Promise((resolve) => setTimeout(resolve, 500));
      assert.equal(wakesA, 1, "A heard only B's message");
      assert.equal(wakesB, 1, "B heard only A's unleased message");
      await stopA();
      await stopB();
    } finally {
      await env.cleanup();
    }
  });

  test("the listener reconnects when its connection is killed, and wakes once in case it missed work", async () => {
    const env = await openTestStore("postgres");
    const name = `mailroom-listen-${randomBytes(4).toString("hex")}`;
    const url = withApplicationName(env.location.databaseUrl as string, name);
    const listening = openPostgresStore({ url, poolSize: 2 });
    try {
      const account = await insertAccount(env.store, "reconnect@example.org");
      let wakes = 0;
      await listening.listenQueued(() => {
        wakes += 1;
      });
      await waitFor("the listener's connection", async () => (await connectionsNamed(name)) === 1);

      assert.equal(await terminateBackends(name), 1);
      await waitFor("the wake-up after reconnecting", () => wakes >= 1);
      await waitFor("a new listener connection", async () => (await connectionsNamed(name)) === 1);

      const before = wakes;
      await env.store.acceptEmail(emailRow(account));
      await waitFor("a wake-up through the new connection", () => wakes > before);
    } finally {
      await listening.close();
      await env.cleanup();
    }
  });

  test("closing the store closes its listener connections", async () => {
    const env = await openTestStore("postgres");
    const name = `mailroom-close-${randomBytes(4).toString("hex")}`;
    const store = openPostgresStore({
      url: withApplicationName(env.location.databaseUrl as string, name),
      poolSize: 2,
    });
    try {
      await store.ping();
      await store.listenQueued(() => {});
      await store.listenQueued(() => {});
      await waitFor("pool + two listeners", async () => (await connectionsNamed(name)) === 3);
      await store.close();
      await waitFor("every connection gone", async () => (await connectionsNamed(name)) === 0);
    } finally {
      await env.cleanup();
    }
  });
});
