import { parentPort, workerData } from "node:worker_threads";
import { serveCalls } from "../threads/thread-server.js";
import { DEFAULT_QUERY_TIMEOUT_MS, sqliteFile } from "./open-store.js";
import { openPostgresStore } from "./postgres.js";
import { openSqliteStore } from "./sqlite.js";
import type { Store } from "./store.js";
import {
  QUEUED_EVENT,
  type StoreThreadApi,
  type StoreThreadData,
  WEBHOOK_JOBS_EVENT,
} from "./threaded-store.js";
import type { Lease, MessageExtras } from "./types.js";
import {
  type PackedAttemptRecord,
  type PackedMessage,
  unpackAttemptRecord,
  unpackMessage,
} from "./wire-rows.js";

// The worker thread behind ThreadedStore: owns the database connection and runs every call on it.
// On SQLite a second one, the reader, answers the API's reads on a connection of its own.
const port = parentPort;
if (!port) throw new Error("store-thread.ts runs as a worker thread (see threaded-store.ts)");
const store = openStoreHere(workerData as StoreThreadData);
let stopListening: (() => Promise<void>) | undefined;

/** The store itself, answering in this thread: PostgreSQL when a URL is configured, else the SQLite file. */
function openStoreHere(data: StoreThreadData): Store {
  if (data.databaseUrl) {
    return openPostgresStore({
      url: data.databaseUrl,
      poolSize: data.databasePoolSize,
      statementTimeoutMs: data.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS,
    });
  }
  return openSqliteStore(sqliteFile(data), { reader: data.reader === true });
}

/**
 * The thread's API: the store itself, with listening turned into calls whose notifications come
 * back as events (ThreadedStore passes them to its listeners).
 */
const api: StoreThreadApi = Object.create(store, {
  listenQueued: {
    async value() {
      stopListening ??= await store.listenQueued(() => thread.emit(QUEUED_EVENT));
    },
  },
  stopListening: {
    async value() {
      const stop = stopListening;
      stopListening = undefined;
      await stop?.();
    },
  },
  acceptPackedEmail: {
    value: (message: PackedMessage, lease?: Lease | null, extras?: MessageExtras) =>
      store.acceptEmail(unpackMessage(message), lease, extras),
  },
  recordPackedAttempt: {
    value: (record: PackedAttemptRecord) => store.recordAttempt(unpackAttemptRecord(record)),
  },
});

// Replies go back as soon as the promise reactions a group commit settled have run, not one loop turn later.
const thread = serveCalls(port, api, (flush) => process.nextTick(flush));
// Webhook jobs queued by a write: an event that crosses with the write's replies (ThreadedStore).
store.listenWebhookJobs((announced) => thread.emit(WEBHOOK_JOBS_EVENT, announced));
