import { Worker } from "node:worker_threads";
import { THREAD_RESOURCE_LIMITS, ThreadClient } from "../threads/thread-client.js";
import { DEFAULT_QUERY_TIMEOUT_MS, type StoreLocation, type StoreOptions } from "./open-store.js";
import type { Lease, MailStore, MessageExtras, WebhookJobsAnnounced } from "./types.js";
import { QUERY_TIMEOUT } from "./unavailable.js";
import { type PackedAttemptRecord, type PackedMessage, packAttemptRecord, packMessage } from "./wire-rows.js";

/** The code of the error every call gets once the store thread has died: answered 503, like a database outage. */
export const STORE_THREAD_GONE = "MAILROOM_STORE_THREAD_GONE";

/**
 * What the store thread answers (store-thread.ts): the store's methods, except that listening is
 * started and stopped by calls and the notifications come back as events.
 */
/** The events a store thread raises by itself: another process queued mail; a write queued webhook jobs. */
export const QUEUED_EVENT = "queued";
export const WEBHOOK_JOBS_EVENT = "webhook-jobs";

export type StoreThreadApi = Omit<MailStore, "kind" | "listenQueued" | "listenWebhookJobs"> & {
  listenQueued(): Promise<void>;
  stopListening(): Promise<void>;
  /** acceptEmail and recordAttempt with their rows as arrays: cheaper to rebuild there (wire-rows.ts). */
  acceptPackedEmail(message: PackedMessage, lease?: Lease | null, extras?: MessageExtras): Promise<void>;
  recordPackedAttempt(record: PackedAttemptRecord): Promise<boolean>;
};

/** What a store thread is started with: where the data is, and (SQLite) whether it is the reader. */
export type StoreThreadData = StoreLocation & { reader?: boolean };

/**
 * A store whose queries run in a worker thread of their own (store-thread.ts). The HTTP edge and the
 * delivery worker keep the main thread; building queries, running them and, on SQLite, waiting for
 * each commit's fsync happen on the other core, so a commit never stalls a request or an SMTP reply.
 * Calls made in one turn of the event loop cross in one message, and so do their replies; concurrent
 * calls still meet in the thread's group commits.
 *
 * On SQLite the API's reads (message lists, one message, its attempts, its MIME, Notifications, Usage
 * Records) run in a second thread on a connection of their own (WAL lets it read beside the writer): a
 * list that scans a large account must not queue the accepts, claims and attempt records behind it
 * (issue 12, item 7). Each such read gives up after MAILROOM_QUERY_TIMEOUT_MS, waiting included (503,
 * code 20505). SQLite cannot stop a statement that is running (better-sqlite3 has no interrupt, and
 * its build leaves out the progress handler), so a read that overruns finishes in the reader thread,
 * unanswered, while the reads queued behind it past their own deadline are skipped: one tenant's slow
 * lists cost that thread, never the writer. On PostgreSQL every query runs in the one store thread,
 * side by side on the pool's connections, and the server's statement_timeout stops a query that runs
 * too long.
 */
export class ThreadedStore implements MailStore {
  readonly kind: MailStore["kind"];
  private readonly thread: ThreadClient<StoreThreadApi>;
  private readerThread: { thread: ThreadClient<StoreThreadApi>; ready: Promise<void> } | undefined;
  private readonly queuedListeners = new Set<() => void>();
  private readonly jobListeners = new Set<(announced: WebhookJobsAnnounced) => void>();
  private readonly queryTimeoutMs: number;

  constructor(
    private readonly location: StoreLocation,
    private readonly options: StoreOptions = {},
  ) {
    this.kind = location.databaseUrl ? "postgres" : "sqlite";
    this.queryTimeoutMs = location.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS;
    this.thread = startStoreThread(location, latencyOf(options, "store"), (event, data) => {
      if (event === WEBHOOK_JOBS_EVENT) {
        for (const listener of this.jobListeners) listener(data as WebhookJobsAnnounced);
      } else for (const listener of this.queuedListeners) listener();
    });
  }

  /**
   * SQLite's reader, started once (and again if it died). Its start (a thread, its modules, the file)
   * can take seconds on a busy machine: that is not the read's time, so a read waits for the reader's
   * first answer before its own deadline starts.
   */
  private reader(): { thread: ThreadClient<StoreThreadApi>; ready: Promise<void> } {
    if (!this.readerThread || this.readerThread.thread.gone) {
      const thread = startStoreThread({ ...this.location, reader: true }, latencyOf(this.options, "reader"));
      this.readerThread = { thread, ready: thread.call("ping") };
    }
    return this.readerThread;
  }

  /** An API read: in SQLite's reader thread within MAILROOM_QUERY_TIMEOUT_MS, else in the store thread. */
  private async read<K extends ReadMethod>(
    method: K,
    ...args: Parameters<MailStore[K]>
  ): Promise<Awaited<ReturnType<MailStore[K]>>> {
    type Untyped = (...callArgs: unknown[]) => Promise<Awaited<ReturnType<MailStore[K]>>>;
    if (this.kind === "postgres") return (this.thread.call as Untyped).call(this.thread, method, ...args);
    const { thread, ready } = this.reader();
    await ready;
    const timeoutMs = this.queryTimeoutMs;
    const timeoutError = () =>
      Object.assign(
        new Error(`${method} did not finish within ${timeoutMs} ms (MAILROOM_QUERY_TIMEOUT_MS)`),
        {
          code: QUERY_TIMEOUT,
        },
      );
    return (thread.callWithin as Untyped).call(thread, timeoutMs, timeoutError, method, ...args);
  }

  async migrate(): Promise<void> {
    await this.thread.call("migrate");
    // A server migrates at start: the reader starts then too, not at the first request (SQLite).
    if (this.kind === "sqlite") this.reader().ready.catch(() => {});
  }

  ping = () => this.thread.call("ping");

  async close(): Promise<void> {
    await Promise.all([this.thread.close(), this.readerThread?.thread.close()]);
  }

  async listenQueued(listener: () => void): Promise<() => Promise<void>> {
    this.queuedListeners.add(listener);
    if (this.queuedListeners.size === 1) await this.thread.call("listenQueued");
    return async () => {
      if (!this.queuedListeners.delete(listener) || this.queuedListeners.size > 0) return;
      if (!this.thread.gone) await this.thread.call("stopListening");
    };
  }

  listenWebhookJobs(listener: (announced: WebhookJobsAnnounced) => void): () => void {
    this.jobListeners.add(listener);
    return () => this.jobListeners.delete(listener);
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
  createAccount: MailStore["createAccount"] = (...args) => this.thread.call("createAccount", ...args);
  findAccountLineage: MailStore["findAccountLineage"] = (...args) =>
    this.thread.call("findAccountLineage", ...args);
  listAccounts: MailStore["listAccounts"] = () => this.thread.call("listAccounts");
  acceptEmail: MailStore["acceptEmail"] = (message, ...rest) =>
    this.thread.call("acceptPackedEmail", packMessage(message), ...rest);
  acceptEmails: MailStore["acceptEmails"] = (...args) => this.thread.call("acceptEmails", ...args);
  claimIdempotencyKey: MailStore["claimIdempotencyKey"] = (...args) =>
    this.thread.call("claimIdempotencyKey", ...args);
  releaseIdempotencyKey: MailStore["releaseIdempotencyKey"] = (...args) =>
    this.thread.call("releaseIdempotencyKey", ...args);
  purgeIdempotencyKeys: MailStore["purgeIdempotencyKeys"] = (...args) =>
    this.thread.call("purgeIdempotencyKeys", ...args);
  releaseUnansweredIdempotencyKeys: MailStore["releaseUnansweredIdempotencyKeys"] = () =>
    this.thread.call("releaseUnansweredIdempotencyKeys");
  findEmail: MailStore["findEmail"] = (...args) => this.read("findEmail", ...args);
  listEmails: MailStore["listEmails"] = (...args) => this.read("listEmails", ...args);
  claimDue: MailStore["claimDue"] = (...args) => this.thread.call("claimDue", ...args);
  nextDueAt: MailStore["nextDueAt"] = () => this.thread.call("nextDueAt");
  queueStats: MailStore["queueStats"] = () => this.read("queueStats");
  recordAttempt: MailStore["recordAttempt"] = (record) =>
    this.thread.call("recordPackedAttempt", packAttemptRecord(record));
  releaseLeases: MailStore["releaseLeases"] = (...args) => this.thread.call("releaseLeases", ...args);
  renewLeases: MailStore["renewLeases"] = (...args) => this.thread.call("renewLeases", ...args);
  reclaimLeases: MailStore["reclaimLeases"] = () => this.thread.call("reclaimLeases");
  startHeartbeat: MailStore["startHeartbeat"] = (...args) => this.thread.call("startHeartbeat", ...args);
  stopHeartbeat: MailStore["stopHeartbeat"] = (...args) => this.thread.call("stopHeartbeat", ...args);
  listAttempts: MailStore["listAttempts"] = (...args) => this.read("listAttempts", ...args);
  findMime: MailStore["findMime"] = (...args) => this.read("findMime", ...args);
  listNotifications: MailStore["listNotifications"] = (...args) => this.read("listNotifications", ...args);
  findNotification: MailStore["findNotification"] = (...args) => this.read("findNotification", ...args);
  usageByDay: MailStore["usageByDay"] = (...args) => this.read("usageByDay", ...args);
  findBlobs: MailStore["findBlobs"] = (...args) => this.thread.call("findBlobs", ...args);
  findRetryContexts: MailStore["findRetryContexts"] = (...args) =>
    this.thread.call("findRetryContexts", ...args);
  insertWebhook: MailStore["insertWebhook"] = (...args) => this.thread.call("insertWebhook", ...args);
  findWebhook: MailStore["findWebhook"] = (...args) => this.thread.call("findWebhook", ...args);
  listWebhooks: MailStore["listWebhooks"] = (...args) => this.thread.call("listWebhooks", ...args);
  updateWebhook: MailStore["updateWebhook"] = (...args) => this.thread.call("updateWebhook", ...args);
  deleteWebhook: MailStore["deleteWebhook"] = (...args) => this.thread.call("deleteWebhook", ...args);
  listEvents: MailStore["listEvents"] = (...args) => this.read("listEvents", ...args);
  findEvent: MailStore["findEvent"] = (...args) => this.read("findEvent", ...args);
  listWebhookDeliveries: MailStore["listWebhookDeliveries"] = (...args) =>
    this.read("listWebhookDeliveries", ...args);
  findWebhookDelivery: MailStore["findWebhookDelivery"] = (...args) =>
    this.read("findWebhookDelivery", ...args);
  enqueueWebhookJobs: MailStore["enqueueWebhookJobs"] = (...args) =>
    this.thread.call("enqueueWebhookJobs", ...args);
  replayEventRange: MailStore["replayEventRange"] = (...args) =>
    this.thread.call("replayEventRange", ...args);
  cancelEmail: MailStore["cancelEmail"] = (...args) => this.thread.call("cancelEmail", ...args);
  rescheduleEmail: MailStore["rescheduleEmail"] = (...args) => this.thread.call("rescheduleEmail", ...args);
  claimSecretKeyCheck: MailStore["claimSecretKeyCheck"] = (...args) =>
    this.thread.call("claimSecretKeyCheck", ...args);
  claimWebhookJobs: MailStore["claimWebhookJobs"] = (...args) =>
    this.thread.call("claimWebhookJobs", ...args);
  nextWebhookDueAt: MailStore["nextWebhookDueAt"] = (...args) =>
    this.thread.call("nextWebhookDueAt", ...args);
  offerWebhookRoom: MailStore["offerWebhookRoom"] = (...args) =>
    this.thread.call("offerWebhookRoom", ...args);
  recordWebhookAttempts: MailStore["recordWebhookAttempts"] = (...args) =>
    this.thread.call("recordWebhookAttempts", ...args);
  insertTemplate: MailStore["insertTemplate"] = (...args) => this.thread.call("insertTemplate", ...args);
  findTemplate: MailStore["findTemplate"] = (...args) => this.thread.call("findTemplate", ...args);
  findTemplateByName: MailStore["findTemplateByName"] = (...args) =>
    this.thread.call("findTemplateByName", ...args);
  listTemplates: MailStore["listTemplates"] = (...args) => this.read("listTemplates", ...args);
  updateTemplate: MailStore["updateTemplate"] = (...args) => this.thread.call("updateTemplate", ...args);
  deleteTemplate: MailStore["deleteTemplate"] = (...args) => this.thread.call("deleteTemplate", ...args);
  insertDomain: MailStore["insertDomain"] = (...args) => this.thread.call("insertDomain", ...args);
  findDomain: MailStore["findDomain"] = (...args) => this.thread.call("findDomain", ...args);
  listDomains: MailStore["listDomains"] = (...args) => this.thread.call("listDomains", ...args);
  updateDomain: MailStore["updateDomain"] = (...args) => this.thread.call("updateDomain", ...args);
  deleteDomain: MailStore["deleteDomain"] = (...args) => this.thread.call("deleteDomain", ...args);
  listSigningDomains: MailStore["listSigningDomains"] = () => this.thread.call("listSigningDomains");
  claimDomainChecks: MailStore["claimDomainChecks"] = (...args) =>
    this.thread.call("claimDomainChecks", ...args);
  purgeBatch: MailStore["purgeBatch"] = (...args) => this.thread.call("purgeBatch", ...args);
  countPurgeable: MailStore["countPurgeable"] = (...args) => this.thread.call("countPurgeable", ...args);
  giveSpaceBack: MailStore["giveSpaceBack"] = (...args) => this.thread.call("giveSpaceBack", ...args);
  eraseAddress: MailStore["eraseAddress"] = (...args) => this.thread.call("eraseAddress", ...args);
}

/**
 * The reads that run in SQLite's reader thread: the API's (and /metrics'), not the delivery worker's
 * or authentication's.
 */
type ReadMethod =
  | "findEmail"
  | "listEmails"
  | "listAttempts"
  | "findMime"
  | "listEvents"
  | "findEvent"
  | "listWebhookDeliveries"
  | "findWebhookDelivery"
  | "listNotifications"
  | "findNotification"
  | "usageByDay"
  | "queueStats"
  | "listTemplates";

/** The thread's latency observer, named after it (undefined: calls are not timed at all). */
function latencyOf(
  options: StoreOptions,
  thread: "store" | "reader",
): ((method: string, ms: number) => void) | undefined {
  const observe = options.onCallLatency;
  return observe && ((method, ms) => observe(thread, method, ms));
}

function startStoreThread(
  data: StoreThreadData,
  onLatency: ((method: string, ms: number) => void) | undefined,
  onEvent?: (event: string, data: unknown) => void,
): ThreadClient<StoreThreadApi> {
  const worker = new Worker(new URL("./store-thread.js", import.meta.url), {
    workerData: data,
    resourceLimits: THREAD_RESOURCE_LIMITS,
  });
  return new ThreadClient(worker, {
    onEvent: (reply) => onEvent?.(reply.event, reply.data),
    onLatency,
    goneError: (cause) =>
      Object.assign(new Error(`The store is unavailable: ${cause.message}`), {
        code: STORE_THREAD_GONE,
        cause,
      }),
  });
}
