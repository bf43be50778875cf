import { parentPort, workerData } from "node:worker_threads";
import { serveCalls } from "../threads/thread-server.js";
import { type StoreLocation, sqliteFile } from "./open-store.js";
import { openPostgresStore } from "./postgres.js";
import { openSqliteStore } from "./sqlite.js";
import type { Store } from "./store.js";

// The worker thread behind ThreadedStore: owns the database connection and runs every call on it.
const port = parentPort;
if (!port) throw new Error("store-thread.ts runs as a worker thread (see threaded-store.ts)");
const store = openStoreHere(workerData as StoreLocation);
let stopListening: (() => Promise<void>) | undefined;

/** The store itself, answering in this thread: PostgreSQL when a URL is configured, else the SQLite file. */
function openStoreHere(location: StoreLocation): Store {
  if (location.databaseUrl) {
    return openPostgresStore({ url: location.databaseUrl, poolSize: location.databasePoolSize });
  }
  return openSqliteStore(sqliteFile(location));
}

// Replies go back as soon as the promise reactions a group commit settled have run, not one loop turn later.
const thread = serveCalls(port, run, (flush) => process.nextTick(flush));

async function run(method: string, args: unknown[]): Promise<unknown> {
  switch (method) {
    case "listenQueued":
      stopListening ??= await store.listenQueued(() => thread.emit("queued"));
      return undefined;
    case "stopListening": {
      const stop = stopListening;
      stopListening = undefined;
      await stop?.();
      return undefined;
    }
    default: {
      const call = store[method as keyof Store] as unknown;
      if (typeof call !== "function") throw new Error(`the store has no method ${method}`);
      return (call as (...args: unknown[]) => Promise<unknown>).apply(store, args);
    }
  }
}
