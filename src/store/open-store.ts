import { join } from "node:path";
import { openPostgresStore } from "./postgres.js";
import { openSqliteStore } from "./sqlite.js";
import type { MailStore, Store } from "./store.js";
import { ThreadedStore } from "./threaded-store.js";

export interface StoreLocation {
  dataDir: string;
  databaseUrl: string | undefined;
  databasePoolSize: number;
}

/**
 * PostgreSQL when a database URL is configured, otherwise the embedded SQLite file in the data dir.
 * SQLite runs in a thread of its own (threaded-store.ts): its calls and fsyncs are synchronous and
 * would otherwise hold up the HTTP edge and the delivery worker.
 */
export function openStore(location: StoreLocation): MailStore {
  if (location.databaseUrl) return openStoreInThisThread(location);
  return new ThreadedStore(location);
}

/** The store itself, answering in the calling thread. */
export function openStoreInThisThread(location: StoreLocation): Store {
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
