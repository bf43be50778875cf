/** A throwaway PostgreSQL database for one Mailroom run, created and dropped through an admin URL. */
import { randomBytes } from "node:crypto";
import pg from "pg";
import { isClosing, undoable } from "./cleanup.js";

export interface TempDatabase {
  /** URL of the new database (same server and credentials as the admin URL). */
  readonly url: string;
  readonly name: string;
  readonly serverVersion: string;
  drop(): Promise<void>;
}

/** Undefined when the server answers at `adminUrl`; otherwise why not. */
export async function postgresUnavailable(adminUrl: string): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query("select 1");
    return undefined;
  } catch (error) {
    return `PostgreSQL not reachable at ${redact(adminUrl)} (${error instanceof Error ? error.message : String(error)})`;
  } finally {
    await client.end().catch(() => undefined);
  }
}

export function redact(url: string): string {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = "***";
  return parsed.toString();
}

async function admin<T>(adminUrl: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

export async function createTempDatabase(adminUrl: string): Promise<TempDatabase> {
  if (isClosing()) throw new Error("not creating a database: the bench is shutting down");
  const name = `mailroom_bench_${randomBytes(5).toString("hex")}`;
  const serverVersion = await admin(adminUrl, async (client) => {
    await client.query(`create database ${name}`);
    const result = await client.query<{ server_version: string }>("show server_version");
    return result.rows[0]?.server_version ?? "unknown";
  });
  const drop = undoable(`drop database ${name}`, () =>
    admin(adminUrl, async (client) => {
      await client.query(`drop database if exists ${name} with (force)`);
    }),
  );
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    name,
    serverVersion,
    drop,
  };
}
