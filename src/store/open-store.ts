import { join } from "node:path";
import { ThreadedStore } from "./threaded-store.js";
import type { MailStore } from "./types.js";

export interface StoreLocation {
  dataDir: string;
  databaseUrl: string | undefined;
  databasePoolSize: number;
  /** MAILROOM_QUERY_TIMEOUT_MS; the default when left out (the CLI, tests). */
  queryTimeoutMs?: number;
}

/** How long a query may run when the location does not say (MAILROOM_QUERY_TIMEOUT_MS's default). */
export const DEFAULT_QUERY_TIMEOUT_MS = 5000;

/**
 * PostgreSQL when a database URL is configured, otherwise the embedded SQLite file in the data dir,
 * either way in a thread of its own (threaded-store.ts), which keeps building queries, the database
 * protocol and (SQLite) synchronous commits off the thread that serves HTTP and delivers mail.
 * Measured in `npm run bench`: delivered/s +40% on SQLite, +65% on PostgreSQL (docs/performance.md).
 * This module loads no database driver: those live in the store thread only (store-thread.ts).
 */
export function openStore(location: StoreLocation, options: StoreOptions = {}): MailStore {
  return new ThreadedStore(location, options);
}

export interface StoreOptions {
  /** Told how long calls to the store threads take (timed per batch: ThreadClientOptions.onLatency). */
  onCallLatency?: (thread: "store" | "reader", method: string, ms: number) => void;
}

export function sqliteFile(location: StoreLocation): string {
  return join(location.dataDir, "mailroom.db");
}

export function describeStore(location: StoreLocation): string {
  if (location.databaseUrl) {
    const url = new URL(location.databaseUrl);
    return `PostgreSQL at ${url.host}${url.pathname}`;
  }
  return `SQLite at ${sqliteFile(location)}`;
}
