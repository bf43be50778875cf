import { Worker } from "node:worker_threads";
import type { StoreLocation } from "./open-store.js";
import type { MailStore } from "./store.js";
import {
  type FromStoreThread,
  fromWire,
  Outbox,
  type StoreCall,
  type ToStoreThread,
} from "./store-thread-protocol.js";

/** The code of the error every call gets once the store thread has died: answered 503, like a database outage. */
export const STORE_THREAD_GONE = "MAILROOM_STORE_THREAD_GONE";

/**
 * The store thread allocates fast and keeps little, and V8 lets a thread's young generation grow to
 * about 32 MB by default: capped, a process stays well under 200 MB at full load, for a few percent
 * of throughput (docs/performance.md). The main thread gets the same treatment from the node flag in
 * `npm start` (docs/operations.md says how to pass it otherwise).
 */
const STORE_THREAD_YOUNG_GENERATION_MB = 8;

type Pending = { resolve: (value: unknown) => void; reject: (error: unknown) => void };

/**
 * A store whose queries run in a worker thread of their own (store-thread.ts). The HTTP edge and the
 * delivery worker keep the main thread; building queries, running them and, on SQLite, waiting for
 * each commit's fsync happen on the other core, so a commit never stalls a request or an SMTP reply.
 * Calls made in one turn of the event loop cross in one message, and so do their replies; concurrent
 * calls still meet in the thread's group commits.
 */
export class ThreadedStore implements MailStore {
  readonly kind: MailStore["kind"];
  private readonly worker: Worker;
  private readonly outbox: Outbox<ToStoreThread>;
  private readonly pending = new Map<number, Pending>();
  private readonly queuedListeners = new Set<() => void>();
  private nextId = 1;
  private gone: Error | undefined;
  private closing: Promise<void> | undefined;
  private readonly exited: Promise<void>;

  constructor(location: StoreLocation) {
    this.kind = location.databaseUrl ? "postgres" : "sqlite";
    this.worker = new Worker(new URL("./store-thread.js", import.meta.url), {
      workerData: location,
      resourceLimits: { maxYoungGenerationSizeMb: STORE_THREAD_YOUNG_GENERATION_MB },
    });
    // An idle store must not keep a process alive (the CLI exits when its work is done).
    this.worker.unref();
    this.outbox = new Outbox((batch) => this.worker.postMessage(batch));
    this.worker.on("message", (batch: FromStoreThread[]) => {
      for (const message of batch) this.receive(message);
    });
    this.worker.on("error", (error) => this.fail(error));
    this.exited = new Promise((resolve) => {
      this.worker.on("exit", (code) => {
        this.fail(new Error(`the store thread exited with code ${code}`));
        resolve();
      });
    });
  }

  private call<T>(method: StoreCall["method"], ...args: unknown[]): Promise<T> {
    if (this.gone) return Promise.reject(this.gone);
    const id = this.nextId++;
    if (this.pending.size === 0) this.worker.ref();
    this.outbox.push({ id, method, args });
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
    });
  }

  private receive(message: FromStoreThread): void {
    if ("event" in message) {
      for (const listener of this.queuedListeners) listener();
      return;
    }
    const call = this.pending.get(message.id);
    if (!call) return;
    this.pending.delete(message.id);
    if (this.pending.size === 0 && !this.closing) this.worker.unref();
    if (message.error) call.reject(fromWire(message.error));
    else call.resolve(message.value);
  }

  /** The thread died (a crash inside it, or it was stopped): every call, now and later, fails as unavailable. */
  private fail(cause: Error): void {
    if (this.gone) return;
    this.gone = Object.assign(new Error(`The store is unavailable: ${cause.message}`), {
      code: STORE_THREAD_GONE,
      cause,
    });
    for (const call of this.pending.values()) call.reject(this.gone);
    this.pending.clear();
  }

  migrate = () => this.call<void>("migrate");
  ping = () => this.call<void>("ping");

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.worker.ref();
      try {
        // The thread closes the database, answers, and then ends by itself (so a profiler in it can write out).
        if (!this.gone) await this.call<void>("close");
        await this.exited;
      } finally {
        await this.worker.terminate();
      }
    })();
    return this.closing;
  }

  async listenQueued(listener: () => void): Promise<() => Promise<void>> {
    this.queuedListeners.add(listener);
    if (this.queuedListeners.size === 1) await this.call<void>("listenQueued");
    return async () => {
      if (!this.queuedListeners.delete(listener) || this.queuedListeners.size > 0) return;
      if (!this.gone) await this.call<void>("stopListening");
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
  findRetryContexts: MailStore["findRetryContexts"] = (...args) => this.call("findRetryContexts", ...args);
}
