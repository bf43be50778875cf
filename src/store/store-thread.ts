import { parentPort, workerData } from "node:worker_threads";
import { type StoreLocation, sqliteFile } from "./open-store.js";
import { openPostgresStore } from "./postgres.js";
import { openSqliteStore } from "./sqlite.js";
import type { Store } from "./store.js";
import { type FromStoreThread, Outbox, type ToStoreThread, toWire } from "./store-thread-protocol.js";

// The worker thread behind ThreadedStore: owns the database connection and runs every call on it.
const port = parentPort;
if (!port) throw new Error("store-thread.ts runs as a worker thread (see threaded-store.ts)");
const store = openStoreHere(workerData as StoreLocation);
let stopListening: (() => Promise<void>) | undefined;

const outbox = new Outbox<FromStoreThread>(
  (batch) => port.postMessage(batch),
  (flush) => process.nextTick(flush),
);
/** The store itself, answering in this thread: PostgreSQL when a URL is configured, else the SQLite file. */
function openStoreHere(location: StoreLocation): Store {
  if (location.databaseUrl) {
    return openPostgresStore({ url: location.databaseUrl, poolSize: location.databasePoolSize });
  }
  return openSqliteStore(sqliteFile(location));
}

const post = (message: FromStoreThread) => outbox.push(message);

async function run(request: ToStoreThread): Promise<unknown> {
  switch (request.method) {
    case "listenQueued":
      stopListening ??= await store.listenQueued(() => post({ event: "queued" }));
      return undefined;
    case "stopListening": {
      const stop = stopListening;
      stopListening = undefined;
      await stop?.();
      return undefined;
    }
    default: {
      const method = store[request.method] as (...args: unknown[]) => Promise<unknown>;
      return method.apply(store, request.args);
    }
  }
}

port.on("message", (batch: ToStoreThread[]) => {
  for (const request of batch) {
    run(request).then(
      (value) => {
        if (request.method !== "close") return post({ id: request.id, value });
        // The last word: answer at once, then stop listening, so the thread's event loop empties and it ends.
        port.postMessage([{ id: request.id, value }]);
        port.close();
      },
      (error: unknown) => post({ id: request.id, error: toWire(error) }),
    );
  }
});
