import { randomBytes } from "node:crypto";
import pg from "pg";

/** The PostgreSQL the tests use: MAILROOM_TEST_PG_URL, or this machine's trust-auth server. */
export const TEST_PG_URL = process.env.MAILROOM_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";

let reachable: Promise<string | undefined> | undefined;

/** Undefined when PostgreSQL answers; otherwise why not (used as the skip reason). */
export function postgresUnavailableReason(): Promise<string | undefined> {
  reachable ??= (async () => {
    const client = new pg.Client({ connectionString: TEST_PG_URL, connectionTimeoutMillis: 3000 });
    try {
      await client.connect();
      await client.query("select 1");
      return undefined;
    } catch (error) {
      const why = `PostgreSQL not reachable at ${TEST_PG_URL} (${error instanceof Error ? error.message : String(error)})`;
      if (process.env.MAILROOM_TEST_REQUIRE_PG === "1") {
        throw new Error(`${why}, and MAILROOM_TEST_REQUIRE_PG=1 requires it`);
      }
      return `${why}; set MAILROOM_TEST_PG_URL or start it to run the PostgreSQL half of the suite`;
    } finally {
      await client.end().catch(() => {});
    }
  })();
  return reachable;
}

/**
 * A fresh schema for one test server, so runs never see each other's rows. Returns the database URL
 * that selects it (via the connection's search_path) and a function that drops it.
 */
export async function createTestSchema(): Promise<{ url: string; drop: () => Promise<void> }> {
  const schema = `mailroom_test_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: TEST_PG_URL });
  await admin.connect();
  try {
    await admin.query(`create schema ${schema}`);
  } finally {
    await admin.end();
  }
  const url = new URL(TEST_PG_URL);
  url.searchParams.set("options", `-c search_path=${schema}`);
  return {
    url: url.toString(),
    async drop() {
      const client = new pg.Client({ connectionString: TEST_PG_URL });
      await client.connect();
      try {
        await client.query(`drop schema if exists ${schema} cascade`);
      } finally {
        await client.end();
      }
    },
  };
}
