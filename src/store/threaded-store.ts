import { Worker } from "node:worker_threads";
import { THREAD_RESOURCE_LIMITS, ThreadClient } from "../threads/thread-client.js";
import type { StoreLocation } from "./open-store.js";
import type { MailStore } from "./types.js";

/** The code of the error every call gets once the store thread has died: answered 503, like a database outage. */
export const STORE_THREAD_GONE = "MAILROOM_STORE_THREAD_GONE";

/**
 * What the store thread answers (store-thread.ts): the store's methods, except that listening is
 * started and stopped by calls and the notifications come back as events.
 */
export type StoreThreadApi = Omit<MailStore, "kind" | "listenQueued"> & {
  listenQueued(): Promise<void>;
  stopListening(): Promise<void>;
};

/**
 * A store whose queries run in a worker thread of their own (store-thread.ts). The HTTP edge and the
 * delivery worker keep the main thread; building queries, running them and, on SQLite, waiting for
 * each commit's fsync happen on the other core, so a commit never stalls a request or an SMTP reply.
 * Calls made in one turn of the event loop cross in one message, and so do their replies; concurrent
 * calls still meet in the thread's group commits.
 */
export class ThreadedStore implements MailStore {
  readonly kind: MailStore["kind"];
  private readonly thread: ThreadClient<StoreThreadApi>;
  private readonly queuedListeners = new Set<() => void>();

  constructor(location: StoreLocation) {
    this.kind = location.databaseUrl ? "postgres" : "sqlite";
    const worker = new Worker(new URL("./store-thread.js", import.meta.url), {
      workerData: location,
      resourceLimits: THREAD_RESOURCE_LIMITS,
    });
    this.thread = new ThreadClient(worker, {
      onEvent: () => {
        for (const listener of this.queuedListeners) listener();
      },
      goneError: (cause) =>
        Object.assign(new Error(`The store is unavailable: ${cause.message}`), {
          code: STORE_THREAD_GONE,
          cause,
        }),
    });
  }

  migrate = () => this.thread.call("migrate");
  ping = () => this.thread.call("ping");

  close(): Promise<void> {
    return this.thread.close();
  }

  async listenQueued(listener: () => void): Promise<() => Promise<void>> {
    this.queuedListeners.add(listener);
    if (this.queuedListeners.size === 1) await this.thread.call("listenQueued");
    return async () => {
      if (!this.queuedListeners.delete(listener) || this.queuedListeners.size > 0) return;
      if (!this.thread.gone) await this.thread.call("stopListening");
    };
  }

  countAccounts: MailStore["countAccounts"] = () => this.thread.call("countAccounts");
  insertAccount: MailStore["insertAccount"] = (...args) => this.thread.call("insertAccount", ...args);
  findAccountBySid: MailStore["findAccountBySid"] = (...args) =>
    this.thread.call("findAccountBySid", ...args);
  findAccountByEmail: MailStore["findAccountByEmail"] = (...args) =>
    this.thread.call("findAccountByEmail", ...args);
  listSubAccounts: MailStore["listSubAccounts"] = (...args) => this.thread.call("listSubAccounts", ...args);
  updateOpenAccount: MailStore["updateOpenAccount"] = (...args) =>
    this.thread.call("updateOpenAccount", ...args);
  closeAccountTree: MailStore["closeAccountTree"] = (...args) =>
    this.thread.call("closeAccountTree", ...args);
  acceptEmail: MailStore["acceptEmail"] = (...args) => this.thread.call("acceptEmail", ...args);
  findEmail: MailStore["findEmail"] = (...args) => this.thread.call("findEmail", ...args);
  listEmails: MailStore["listEmails"] = (...args) => this.thread.call("listEmails", ...args);
  claimDue: MailStore["claimDue"] = (...args) => this.thread.call("claimDue", ...args);
  nextDueAt: MailStore["nextDueAt"] = () => this.thread.call("nextDueAt");
  recordAttempt: MailStore["recordAttempt"] = (...args) => this.thread.call("recordAttempt", ...args);
  releaseLeases: MailStore["releaseLeases"] = (...args) => this.thread.call("releaseLeases", ...args);
  renewLeases: MailStore["renewLeases"] = (...args) => this.thread.call("renewLeases", ...args);
  reclaimLeases: MailStore["reclaimLeases"] = () => this.thread.call("reclaimLeases");
  startHeartbeat: MailStore["startHeartbeat"] = (...args) => this.thread.call("startHeartbeat", ...args);
  stopHeartbeat: MailStore["stopHeartbeat"] = (...args) => this.thread.call("stopHeartbeat", ...args);
  listAttempts: MailStore["listAttempts"] = (...args) => this.thread.call("listAttempts", ...args);
  findMime: MailStore["findMime"] = (...args) => this.thread.call("findMime", ...args);
  findBlobs: MailStore["findBlobs"] = (...args) => this.thread.call("findBlobs", ...args);
  findRetryContexts: MailStore["findRetryContexts"] = (...args) =>
    this.thread.call("findRetryContexts", ...args);
}
