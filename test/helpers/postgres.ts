import { randomBytes } from "node:crypto";
import { createServer, connect as netConnect, type Socket } from "node:net";
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

const STALE_AFTER_MS = 60 * 60 * 1000;
let sweeping: Promise<void> | undefined;

/**
 * Drops test schemas over an hour old (no test runs that long): what a run killed mid-way left behind.
 * Runs once per test process; a schema another process is dropping at the same moment is skipped.
 */
async function sweepStaleSchemas(admin: pg.Client): Promise<void> {
  const { rows } = await admin.query<{ name: string }>(
    "select schema_name as name from information_schema.schemata where schema_name like 'mailroom\\_test\\_%'",
  );
  for (const { name } of rows) {
    const created = Number.parseInt(/^mailroom_test_([0-9a-z]+)_[0-9a-f]+$/.exec(name)?.[1] ?? "0", 36);
    if (Date.now() - created > STALE_AFTER_MS) {
      await admin.query(`drop schema if exists ${name} cascade`).catch(() => {});
    }
  }
}

/**
 * A fresh schema for one test server, so runs never see each other's rows. Returns the database URL
 * that selects it (via the connection's search_path) and a function that drops it.
 */
export async function createTestSchema(): Promise<{
  url: string;
  schema: string;
  drop: () => Promise<void>;
}> {
  // The creation time is in the name, so schemas left by a killed run can be recognised and swept.
  const schema = `mailroom_test_${Date.now().toString(36)}_${randomBytes(4).toString("hex")}`;
  const admin = new pg.Client({ connectionString: TEST_PG_URL });
  await admin.connect();
  try {
    sweeping ??= sweepStaleSchemas(admin);
    await sweeping;
    await admin.query(`create schema ${schema}`);
  } finally {
    await admin.end();
  }
  const url = new URL(TEST_PG_URL);
  url.searchParams.set("options", `-c search_path=${schema}`);
  return {
    url: url.toString(),
    schema,
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

/** Runs one query on the test server as the administrator (outside any test schema). */
export async function adminQuery<R extends pg.QueryResultRow>(
  text: string,
  values: unknown[] = [],
): Promise<R[]> {
  const client = new pg.Client({ connectionString: TEST_PG_URL });
  await client.connect();
  try {
    return (await client.query<R>(text, values)).rows;
  } finally {
    await client.end();
  }
}

/** `url` with the connections it opens named `name` in pg_stat_activity (so a test can find them). */
export function withApplicationName(url: string, name: string): string {
  const named = new URL(url);
  named.searchParams.set("application_name", name);
  return named.toString();
}

/** Kills every server process serving a connection named `name`, as a DBA or a failover would. */
export async function terminateBackends(name: string): Promise<number> {
  const rows = await adminQuery<{ pid: number }>(
    "select pg_terminate_backend(pid) as done, pid from pg_stat_activity where application_name = $1 and pid <> pg_backend_pid()",
    [name],
  );
  return rows.length;
}

export interface PostgresProxy {
  /** The database URL given, pointed at the proxy instead. */
  url: string;
  /** The database "goes away": every open connection is reset and new ones are refused. */
  cut(): void;
  /** The database is back: new connections go through again. */
  restore(): void;
  close(): Promise<void>;
}

/**
 * A TCP proxy in front of the test PostgreSQL, on a random port, that a test can cut and restore.
 * This is how a test makes the database unreachable for one Mailroom without touching the shared server.
 */
export async function startPostgresProxy(databaseUrl: string): Promise<PostgresProxy> {
  const target = new URL(databaseUrl);
  const sockets = new Set<Socket>();
  let up = true;
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
  };
  const server = createServer((client) => {
    track(client);
    if (!up) {
      client.resetAndDestroy();
      return;
    }
    const upstream = netConnect(Number(target.port || 5432), target.hostname);
    track(upstream);
    client.pipe(upstream).pipe(client);
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("proxy has no TCP address");
  const url = new URL(databaseUrl);
  url.hostname = "127.0.0.1";
  url.port = String(address.port);
  return {
    url: url.toString(),
    cut() {
      up = false;
      for (const socket of sockets) socket.resetAndDestroy();
    },
    restore() {
      up = true;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
