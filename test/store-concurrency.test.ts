import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, test } from "node:test";
import BetterSqlite3 from "better-sqlite3";
import pg from "pg";
import { migrationProvider } from "../src/store/migrations.js";
import type { MailStore } from "../src/store/types.js";
import { runCli } from "./helpers/cli.js";
import { adminQuery } from "./helpers/postgres.js";
import { acceptMany, attemptRecord, emailRow, insertAccount, T0 } from "./helpers/store-rows.js";
import { openTestStore, storeVariants, type TestStore } from "./helpers/stores.js";

/** Every migration, in order: each must be recorded exactly once. */
const ALL_MIGRATIONS = Object.keys(await migrationProvider.getMigrations()).sort();

/** Runs `loops` claim loops on each store at once until the queue looks empty; returns every SID claimed. */
async function claimEverything(
  stores: MailStore[],
  loops: number,
  now: number,
  leaseMs: number,
): Promise<string[]> {
  const claimed: string[] = [];
  await Promise.all(
    stores.flatMap((store, s) =>
      Array.from({ length: loops }, async (_, l) => {
        for (;;) {
          const rows = await store.claimDue(`store${s}-loop${l}`, now, leaseMs, 7);
          if (rows.length === 0) return;
          claimed.push(...rows.map((row) => row.sid));
        }
      }),
    ),
  );
  return claimed;
}

function duplicates(sids: string[]): string[] {
  const seen = new Set<string>();
  const repeated: string[] = [];
  for (const sid of sids) {
    if (seen.has(sid)) repeated.push(sid);
    seen.add(sid);
  }
  return repeated;
}

/** The migrations Kysely recorded, read straight from the database (not through a MailStore). */
async function recordedMigrations(env: TestStore): Promise<string[]> {
  if (env.kind === "postgres") {
    const rows = await adminQuery<{ name: string }>(
      `select name from ${env.schema}.kysely_migration order by name`,
    );
    return rows.map((row) => row.name);
  }
  const db = new BetterSqlite3(join(env.location.dataDir, "mailroom.db"), { readonly: true });
  try {
    return (
      db.prepare("select name from kysely_migration order by name").all() as Array<{ name: string }>
    ).map((row) => row.name);
  } finally {
    db.close();
  }
}

for (const variant of await storeVariants()) {
  describe(`store concurrency (${variant.kind})`, { skip: variant.skip }, () => {
    test("concurrent claimers never get the same message, and together get every one", async () => {
      const env = await openTestStore(variant.kind);
      try {
        const account = await insertAccount(env.store, "claims@example.org");
        const sids = await acceptMany(env.store, account, 600, (i) => ({ date_created: T0 + (i % 50) }));
        // PostgreSQL: three stores on one database stand for three processes (FOR UPDATE SKIP LOCKED).
        // SQLite has one writer per file, so one store with concurrent claim loops is its whole story.
        const stores =
          variant.kind === "postgres" ? [env.store, env.openAnother(), env.openAnother()] : [env.store];
        const now = T0 + 1000;

        const first = await claimEverything(stores, 4, now, 1000);
        assert.deepEqual(duplicates(first), [], "no message is claimed twice while its lease holds");
        assert.deepEqual(new Set(first), new Set(sids));

        // Every lease has run out (their owners "died"): the same race takes each message exactly once more.
        const second = await claimEverything(stores, 4, now + 1001, 1000);
        assert.deepEqual(duplicates(second), []);
        assert.deepEqual(new Set(second), new Set(sids));
      } finally {
        await env.cleanup();
      }
    });

    test("processes starting at once on a fresh store migrate it once and all succeed", async () => {
      const env = await openTestStore(variant.kind, { migrate: false });
      try {
        // `accounts create` migrates, then writes: six of them at once is six processes starting together.
        const results = await Promise.all(
          Array.from({ length: 6 }, (_, i) =>
            runCli(["accounts", "create", "--email", `starter${i}@example.org`], env.env),
          ),
        );
        for (const result of results) assert.equal(result.code, 0, result.stderr);
        const sids = results.map((result) => JSON.parse(result.stdout).sid as string);
        assert.equal(new Set(sids).size, 6);
        assert.equal(await env.store.countAccounts(), 6);
        assert.deepEqual(await recordedMigrations(env), ALL_MIGRATIONS);
        await env.store.migrate(); // and once more is a no-op
        assert.deepEqual(await recordedMigrations(env), ALL_MIGRATIONS);
      } finally {
        await env.cleanup();
      }
    });
  });
}

const [, postgres] = await storeVariants();
describe("PostgreSQL migrations", { skip: postgres?.skip ?? "no PostgreSQL variant" }, () => {
  test("stores migrating one fresh schema at once all succeed (Kysely's advisory lock)", async () => {
    const env = await openTestStore("postgres", { migrate: false });
    try {
      const stores = Array.from({ length: 6 }, () => env.openAnother());
      const results = await Promise.allSettled(stores.map((store) => store.migrate()));
      assert.deepEqual(
        results.map((r) => (r.status === "rejected" ? String(r.reason) : "ok")),
        Array(6).fill("ok"),
      );
      assert.deepEqual(await recordedMigrations(env), ALL_MIGRATIONS);
    } finally {
      await env.cleanup();
    }
  });

  test("Kysely's bookkeeping tables land in the connection's schema, even when another schema has them", async () => {
    // Two migrated schemas side by side: before the fix, the second saw the first's kysely_migration
    // (Kysely searches every schema) and skipped creating its own.
    const first = await openTestStore("postgres");
    const second = await openTestStore("postgres");
    try {
      for (const env of [first, second]) {
        const rows = await adminQuery<{ table_name: string }>(
          "select table_name from information_schema.tables where table_schema = $1 and table_name like 'kysely%' order by 1",
          [env.schema],
        );
        assert.deepEqual(
          rows.map((row) => row.table_name),
          ["kysely_migration", "kysely_migration_lock"],
        );
      }
    } finally {
      await first.cleanup();
      await second.cleanup();
    }
  });
});

describe("PostgreSQL writes side by side", { skip: postgres?.skip ?? "no PostgreSQL variant" }, () => {
  test("an accept commits while an attempt batch waits on a row lock", async () => {
    const env = await openTestStore("postgres");
    const locker = new pg.Client({ connectionString: env.location.databaseUrl });
    try {
      const account = await insertAccount(env.store, "side@example.org");
      const leased = emailRow(account);
      await env.store.acceptEmail(leased, { owner: "w", expiresAt: T0 + 10_000_000_000 });
      // Another session holds the message's queue row, so the attempt batch settling it must wait.
      await locker.connect();
      await locker.query("begin");
      await locker.query("select 1 from delivery_queue where message_sid = $1 for update", [leased.sid]);
      let recorded: boolean | undefined;
      const recording = env.store.recordAttempt(attemptRecord(account, leased.sid)).then((result) => {
        recorded = result;
      });
      // With one queue for both kinds, this accept would wait behind the blocked attempt batch.
      const accepted = await Promise.race([
        env.store.acceptEmail(emailRow(account)).then(() => "committed"),
        new Promise((resolve) => setTimeout(() => resolve("still waiting after 10 s"), 10_000)),
      ]);
      assert.equal(accepted, "committed");
      assert.equal(recorded, undefined, "the attempt batch is still waiting on the lock");
      await locker.query("commit");
      await recording;
      assert.equal(recorded, true);
    } finally {
      await locker.end().catch(() => {});
      await env.cleanup();
    }
  });
});
