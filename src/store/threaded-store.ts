import { Worker } from "node:worker_threads";
import { THREAD_RESOURCE_LIMITS, ThreadClient } from "../threads/thread-client.js";
import type { StoreLocation } from "./open-store.js";
import type { MailStore } from "./store.js";

/** The code of the error every call gets once the store thread has died: answered 503, like a database outage. */
export const STORE_THREAD_GONE = "MAILROOM_STORE_THREAD_GONE";

/** A store method the thread runs (store-thread.ts), or `stopListening`, which ends what listenQueued began. */
type StoreMethod = Exclude<keyof MailStore, "kind"> | "stopListening";

/**
 * A store whose queries run in a worker thread of their own (store-thread.ts). The HTTP edge and the
 * delivery worker keep the main thread; building queries, running them and, on SQLite, waiting for
 * each commit's fsync happen on the other core, so a commit never stalls a request or an SMTP reply.
 * Calls made in one turn of the event loop cross in one message, and so do their replies; concurrent
 * calls still meet in the thread's group commits.
 */
export class ThreadedStore implements MailStore {
  readonly kind: MailStore["kind"];
  private readonly thread: ThreadClient;
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

  private call<T>(method: StoreMethod, ...args: unknown[]): Promise<T> {
    return this.thread.call<T>(method, args);
  }

  migrate = () => this.call<void>("migrate");
  ping = () => this.call<void>("ping");

  close(): Promise<void> {
    return this.thread.close();
  }

  async listenQueued(listener: () => void): Promise<() => Promise<void>> {
    this.queuedListeners.add(listener);
    if (this.queuedListeners.size === 1) await this.call<void>("listenQueued");
    return async () => {
      if (!this.queuedListeners.delete(listener) || this.queuedListeners.size > 0) return;
      if (!this.thread.gone) await this.call<void>("stopListening");
    };
  }

  countAccounts: MailStore["countAccounts"] = () => this.call("countAccounts");
  insertAccount: MailStore["insertAccount"] = (...args) => this.call("insertAccount", ...args);
  findAccountBySid: MailStore["findAccountBySid"] = (...args) => this.call("findAccountBySid", ...args);
  findAccountByEmail: MailStore["findAccountByEmail"] = (...args) => this.call("findAccountByEmail", ...args);
  listSubAccounts: MailStore["listSubAccounts"] = (...args) => this.call("listSubAccounts", ...args);
  updateOpenAccount: MailStore["updateOpenAccount"] = (...args) => this.call("updateOpenAccount", ...args);
  closeAccountTree: MailStore["closeAccountTree"] = (...args) => this.call("closeAccountTree", ...args);
  acceptEmail: MailStore["acceptEmail"] = (...args) => this.call("acceptEmail", ...args);
  findEmail: MailStore["findEmail"] = (...args) => this.call("findEmail", ...args);
  listEmails: MailStore["listEmails"] = (...args) => this.call("listEmails", ...args);
  claimDue: MailStore["claimDue"] = (...args) => this.call("claimDue", ...args);
  nextDueAt: MailStore["nextDueAt"] = () => this.call("nextDueAt");
  recordAttempt: MailStore["recordAttempt"] = (...args) => this.call("recordAttempt", ...args);
  releaseLeases: MailStore["releaseLeases"] = (...args) => this.call("releaseLeases", ...args);
  renewLeases: MailStore["renewLeases"] = (...args) => this.call("renewLeases", ...args);
  listAttempts: MailStore["listAttempts"] = (...args) => this.call("listAttempts", ...args);
  findMime: MailStore["findMime"] = (...args) => this.call("findMime", ...args);
  findBlobs: MailStore["findBlobs"] = (...args) => this.call("findBlobs", ...args);
  findRetryContexts: MailStore["findRetryContexts"] = (...args) => this.call("findRetryContexts", ...args);
}
