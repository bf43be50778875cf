import { join } from "node:path";
import { openPostgresStore } from "./postgres.js";
import { openSqliteStore } from "./sqlite.js";
import type { Store } from "./store.js";

export interface StoreLocation {
  dataDir: string;
  databaseUrl: string | undefined;
  databasePoolSize: number;
}

/** PostgreSQL when a database URL is configured, otherwise the embedded SQLite file in the data dir. */
export function openStore(location: StoreLocation): Store {
  if (location.databaseUrl) {
    return openPostgresStore({ url: location.databaseUrl, poolSize: location.databasePoolSize });
  }
  return openSqliteStore(join(location.dataDir, "mailroom.db"));
}

export function describeStore(location: StoreLocation): string {
  if (location.databaseUrl) {
    const url = new URL(location.databaseUrl);
    return `PostgreSQL at ${url.host}${url.pathname}`;
  }
  return `SQLite at ${join(location.dataDir, "mailroom.db")}`;
}
