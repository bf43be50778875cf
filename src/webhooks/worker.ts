import { settledWithin } from "../delivery/settled-within.js";
import { WakeSignal } from "../delivery/wake-signal.js";
import { newSid } from "../domain/ids.js";
import type { WebhookMetrics } from "../metrics/metrics.js";
import type {
  MailStore,
  WebhookAttemptRecord,
  WebhookAttemptResult,
  WebhookJob,
  WebhookJobsAnnounced,
  WebhookTargets,
} from "../store/types.js";
import { isStoreFull, isStoreUnavailable } from "../store/unavailable.js";
import { HostLimiter } from "./host-limiter.js";
import { type PostResult, WebhookPoster } from "./http-post.js";
import { eventBody, statusCallbackForm } from "./payload.js";
import { nextRetryAt } from "./retry-schedule.js";
import { signatureHeaders } from "./signer.js";

/** Wakes the sender: jobs were queued that the store did not announce (replays). */
export interface WebhookNudge {
  nudge(): void;
}

export interface WebhookWorkerSettings {
  /** MAILROOM_WEBHOOK_CONCURRENCY: jobs in hand at once (never more claimed than free slots). */
  concurrency: number;
  /** MAILROOM_WEBHOOK_HOST_CONCURRENCY: POSTs at once per destination host. */
  hostConcurrency: number;
  timeoutMs: number;
  allowPrivate: boolean;
  retryBaseMs: number;
  disableAfterMs: number;
  /** MAILROOM_WEBHOOK_POLL_INTERVAL_MS: longest sleep while idle. */
  pollIntervalMs: number;
  /** MAILROOM_LEASE_MS, as for messages. */
  leaseMs: number;
  shutdownTimeoutMs: number;
}

export interface WebhookWorkerDeps {
  store: MailStore;
  /** The delivery worker's owner: its heartbeat covers these leases too. */
  owner: string;
  /** The signing secret (`whsec_…`) from a webhook's `secret_sealed` (src/domain/secret-box.ts). */
  openSecret: (sealed: string, webhookSid: string) => string;
  logger: Pick<import("pino").BaseLogger, "debug" | "info" | "warn" | "error">;
  /** Told of each attempt that did not get a 2xx answer (/metrics). */
  metrics?: WebhookMetrics | undefined;
}

// A nudge wakes the loop after this long, so a burst of events costs one claim, not one each.
const NUDGE_DEBOUNCE_MS = 5;
// When the queue says something is due but nothing could be claimed, look again shortly, not at once.
const MIN_WAIT_MS = 10;

/**
 * Delivers webhook_queue's jobs, durably and at least once: signed event POSTs to webhooks, and the
 * form POST of a message's StatusCallback. Jobs are claimed with a lease like messages
 * (StoreDialect.claimDue) under the delivery worker's owner, so a process that dies has its jobs
 * taken over with its messages. At most `concurrency` jobs are in hand, at most `hostConcurrency` per
 * destination host. Jobs of one target and message go one after another, in SID (event) order.
 * Every attempt is recorded (a Deliveries row for webhooks) with the job deleted or rescheduled, in
 * one transaction, while the lease is still held.
 */
export class WebhookWorker implements WebhookNudge {
  private readonly inFlight = new Map<string, Promise<void>>();
  /** Jobs holding a slot: from their start until their POST is answered (see begin). */
  private busy = 0;
  /**
   * Room offered to the store per webhook SID for jobs handed over at write time (SQLite:
   * MailStore.offerWebhookRoom), not yet used: slots promised, so claims leave them alone.
   */
  private readonly granted = new Map<string, number>();
  private totalGranted = 0;
  /** Webhooks whose jobs came lately (claimed or handed): the ones room is offered for. */
  private readonly activeHooks = new Set<string>();
  private offerScheduled = false;
  /** Whether jobs were handed over since the last look (renewal tick): room unused meanwhile is taken back. */
  private handedLately = false;
  private readonly handsOff: boolean;
  private readonly releasing: Promise<unknown>[] = [];
  /**
   * False once a claim that left out the targets holding their allowance found no more for the
   * others: the next such claim waits for a sign that others have jobs (a write or replay queued
   * some, a retry fell due, the poll interval passed). Such a claim scans past every job of the
   * left-out targets, the whole backlog when one receiver is behind.
   */
  private othersMayWait = true;
  /**
   * Jobs in hand per target (a webhook, or a callback URL). A target with `perTargetLimit` of them is
   * left out of claims until some finish (see claimAndStart).
   */
  private readonly inHand = new Map<string, number>();
  private readonly perTargetLimit: number;
  /** The last job started per (target, message): the next one of that pair waits for it. */
  private readonly chains = new Map<string, Promise<void>>();
  private readonly signal = new WakeSignal();
  private readonly hosts: HostLimiter;
  private readonly poster: WebhookPoster;
  private readonly abandon = new AbortController();
  private readonly secrets = new Map<string, string>();
  private readonly recorder: BatchedRecorder;
  private running: Promise<void> | undefined;
  private stopping = false;
  private backlog = false;
  private nudged = false;
  private renewTimer: NodeJS.Timeout | undefined;
  private stopListening: (() => void) | undefined;

  constructor(
    private readonly deps: WebhookWorkerDeps,
    private readonly settings: WebhookWorkerSettings,
  ) {
    this.hosts = new HostLimiter(settings.hostConcurrency);
    // Twice what may be sent to one host at once (enough to keep its connections busy), and at most
    // half the slots: one target that never answers leaves the other half to everyone else.
    this.perTargetLimit = Math.min(
      2 * settings.hostConcurrency,
      Math.max(1, Math.floor(settings.concurrency / 2)),
    );
    this.poster = new WebhookPoster({
      timeoutMs: settings.timeoutMs,
      allowPrivate: settings.allowPrivate,
      hostConcurrency: settings.hostConcurrency,
    });
    this.recorder = new BatchedRecorder((records) => deps.store.recordWebhookAttempts(records));
    // One process writes an SQLite file's jobs: they can be handed over as they are written.
    this.handsOff = deps.store.kind === "sqlite";
  }

  start(): void {
    if (this.running) return;
    this.stopListening = this.deps.store.listenWebhookJobs((announced) => this.announced(announced));
    this.renewTimer = setInterval(
      () => {
        void this.renewLeases();
        void this.takeBackIdleRoom();
      },
      Math.max(50, this.settings.leaseMs / 3),
    );
    this.running = this.run();
  }

  /**
   * A write queued jobs: those handed over (leased to this sender already) start now; those left for
   * claims wake the loop.
   */
  private announced({ handed, queued, returned, waiting }: WebhookJobsAnnounced): void {
    for (const [webhookSid, unused] of Object.entries(returned)) this.ungrant(webhookSid, unused);
    const release: string[] = [];
    for (const job of handed) {
      this.ungrant(job.webhook_sid as string, 1);
      if (this.stopping) release.push(job.sid);
      else if (!this.inFlight.has(job.sid)) this.begin(job);
    }
    if (handed.length > 0) this.handedLately = true;
    if (release.length > 0) {
      // Offered before the stop: given back for the next start (or another process).
      this.releasing.push(
        this.deps.store.releaseLeases(this.deps.owner, release, "webhook_queue").catch(() => {}),
      );
    }
    if (!queued && Object.keys(returned).length === 0) return;
    // Webhooks with jobs left for claims are served by claims until a claim finds their queue
    // drained: room offered for them meanwhile would count as held and keep claims away.
    let offeredToBacklogged = false;
    for (const sid of [...(waiting?.webhookSids ?? []), ...Object.keys(returned)]) {
      this.activeHooks.delete(sid);
      if ((this.granted.get(sid) ?? 0) > 0) offeredToBacklogged = true;
    }
    if (offeredToBacklogged && !this.stopping) {
      void this.withdrawRoom().then(() => {
        this.othersMayWait = true;
        this.scheduleOffer();
        this.signal.wake();
      });
    }
    // Jobs only for targets that hold their allowance wait for a slot of theirs (its release wakes
    // the loop); a claim now would skip them all, scanning the whole queue to find nothing.
    const forOthers =
      waiting === undefined ||
      waiting.callbacks ||
      waiting.webhookSids.some((sid) => this.held(`W${sid}`) < this.perTargetLimit) ||
      Object.keys(returned).length > 0;
    if (forOthers) this.othersMayWait = true;
    this.backlog = true;
    this.wakeSoon();
  }

  private ungrant(webhookSid: string, count: number): void {
    const had = this.granted.get(webhookSid) ?? 0;
    const used = Math.min(had, count);
    if (had - used === 0) this.granted.delete(webhookSid);
    else this.granted.set(webhookSid, had - used);
    this.totalGranted -= used;
  }

  /** Offers the store room for the active webhooks' next jobs (once per turn of the event loop). */
  private scheduleOffer(): void {
    if (!this.handsOff || this.offerScheduled || this.stopping) return;
    this.offerScheduled = true;
    setImmediate(() => {
      this.offerScheduled = false;
      if (this.stopping) return;
      // Room counts against the same slots as claims, and each webhook against its allowance.
      let budget = this.settings.concurrency - this.busy - this.totalGranted;
      const room: Record<string, number> = {};
      let offered = false;
      for (const webhookSid of this.activeHooks) {
        if (budget <= 0) break;
        const held = (this.inHand.get(`W${webhookSid}`) ?? 0) + (this.granted.get(webhookSid) ?? 0);
        const more = Math.min(budget, this.perTargetLimit - held);
        // Room in handfuls while some is still offered: an offer per finished job is a call per job.
        const granted = this.granted.get(webhookSid) ?? 0;
        if (more <= 0 || (granted > 0 && more < Math.ceil(this.perTargetLimit / 4))) continue;
        room[webhookSid] = more;
        this.granted.set(webhookSid, (this.granted.get(webhookSid) ?? 0) + more);
        this.totalGranted += more;
        budget -= more;
        offered = true;
      }
      if (!offered) return;
      this.deps.store.offerWebhookRoom(this.deps.owner, this.settings.leaseMs, room).catch((error) => {
        this.deps.logger.warn({ err: error }, "webhooks: could not offer room for handed-over jobs");
        for (const [webhookSid, more] of Object.entries(room)) this.ungrant(webhookSid, more);
      });
    });
  }

  /**
   * Room no write used since the last look is taken back (its webhook went quiet, or was deleted):
   * slots promised to it are free for claims again; the next jobs of a webhook offer it anew.
   */
  private async takeBackIdleRoom(): Promise<void> {
    const idle = !this.handedLately && this.totalGranted > 0;
    this.handedLately = false;
    if (!idle || this.stopping) return;
    await this.withdrawRoom();
    this.activeHooks.clear();
    this.signal.wake();
  }

  /**
   * A webhook now has a job waiting for its retry: room offered for it would keep claims away from
   * that job (a target's room counts as held), so it is taken back; claims serve the webhook until
   * they find its queue drained again.
   */
  private stopHandingOff(webhookSid: string): void {
    if (!this.activeHooks.delete(webhookSid) && !this.granted.has(webhookSid)) return;
    void this.withdrawRoom().then(() => {
      this.scheduleOffer();
      this.signal.wake();
    });
  }

  private async withdrawRoom(): Promise<void> {
    try {
      const left = await this.deps.store.offerWebhookRoom(this.deps.owner, this.settings.leaseMs, null);
      for (const [webhookSid, unused] of Object.entries(left)) this.ungrant(webhookSid, unused);
    } catch (error) {
      this.deps.logger.warn({ err: error }, "webhooks: could not take back room for handed-over jobs");
    }
  }

  /**
   * Jobs were queued outside the store's writes (replays): look at the queue soon. Room offered for
   * handed-over jobs is taken back first: it counts as held, and would keep claims away from the
   * replayed jobs of its webhook; the claims that find the queue drained offer it again.
   */
  nudge(): void {
    this.othersMayWait = true;
    if (this.totalGranted > 0 && !this.stopping) {
      this.activeHooks.clear();
      void this.withdrawRoom().then(() => this.wakeSoon());
      return;
    }
    this.wakeSoon();
  }

  /** Look at the queue soon (debounced: a burst of writes costs one claim). */
  private wakeSoon(): void {
    if (this.nudged || this.stopping) return;
    this.nudged = true;
    setTimeout(() => {
      this.nudged = false;
      this.signal.wake();
    }, NUDGE_DEBOUNCE_MS).unref();
  }

  /**
   * Stops claiming, gives the POSTs in flight up to shutdownTimeoutMs, then cuts the rest and releases
   * their leases (unrecorded: the next start, or another process, sends them again).
   */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.stopping = true;
    // Jobs handed over before the room is withdrawn arrive first, and are released (announced).
    if (this.handsOff) await this.withdrawRoom();
    this.stopListening?.();
    await Promise.all(this.releasing);
    this.signal.wake();
    await this.running;
    const finished = await settledWithin([...this.inFlight.values()], this.settings.shutdownTimeoutMs);
    clearInterval(this.renewTimer);
    if (!finished) {
      const sids = [...this.inFlight.keys()];
      this.abandon.abort();
      // Cuts the POSTs in flight: their results say they were abandoned, and nothing is recorded.
      this.poster.close();
      await Promise.allSettled(this.inFlight.values());
      await this.deps.store.releaseLeases(this.deps.owner, sids, "webhook_queue").catch(() => {});
      this.deps.logger.info(
        { released: sids.length },
        "webhooks: deliveries still in flight at the shutdown timeout were released for the next start",
      );
    }
    this.poster.close();
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      let waitMs: number;
      try {
        waitMs = await this.claimAndStart();
      } catch (error) {
        this.deps.logger.error({ err: error }, "webhooks: could not read the queue; trying again shortly");
        waitMs = this.settings.pollIntervalMs;
      }
      if (waitMs > 0 && !this.stopping) {
        const slept = Date.now();
        await this.signal.wait(waitMs);
        // A retry may have fallen due meanwhile, for any target.
        if (Date.now() - slept >= waitMs) this.othersMayWait = true;
      }
    }
  }

  /** Fills free slots from the queue; returns how long to sleep (0: look again now). */
  private async claimAndStart(): Promise<number> {
    const { concurrency, leaseMs, pollIntervalMs } = this.settings;
    const free = concurrency - this.busy - this.totalGranted;
    // Claim in batches (a claim is a commit): once half the slots are free, or when idle.
    if (free <= 0 || (this.busy > 0 && free < Math.ceil(concurrency / 2))) {
      // Jobs may be waiting (this was a nudge or a retry due): the next slots freed wake the loop.
      this.backlog = true;
      return pollIntervalMs;
    }
    // Targets holding their allowance are left out, and a claim is at most what the fullest of the
    // others may still take: whichever target the claimed jobs are for, none ends up with more than its
    // allowance (a receiver that never answers, thousands of jobs queued, holds at most that many
    // slots), and the others' jobs keep going. Nothing claimed is handed back.
    let fullest = 0;
    for (const target of this.inHand.keys()) {
      const count = this.held(target);
      if (count < this.perTargetLimit && count > fullest) fullest = count;
    }
    for (const webhookSid of this.granted.keys()) {
      const count = this.held(`W${webhookSid}`);
      if (count < this.perTargetLimit && count > fullest) fullest = count;
    }
    const limit = Math.min(free, this.perTargetLimit - fullest);
    const skip = this.saturatedTargets();
    if (skip && !this.othersMayWait) {
      // Their slots' release wakes the loop (backlog).
      this.backlog = true;
      return pollIntervalMs;
    }
    const claimed = await this.deps.store.claimWebhookJobs(this.deps.owner, Date.now(), leaseMs, limit, skip);
    if (skip && claimed.length < limit) this.othersMayWait = false;
    for (const job of claimed) {
      // Still in hand here only if its lease ran out meanwhile: the claim merely extended it.
      if (!this.inFlight.has(job.sid)) this.begin(job);
    }
    // Their webhooks' next jobs may be handed over as they are written, without a claim.
    if (this.handsOff && claimed.length < limit) {
      for (const job of claimed) if (job.webhook_sid !== null) this.activeHooks.add(job.webhook_sid);
      this.scheduleOffer();
    }
    this.backlog = claimed.length === limit;
    if (this.backlog) return 0;
    const next = await this.deps.store.nextWebhookDueAt(this.saturatedTargets());
    if (next === null) return pollIntervalMs;
    return Math.min(pollIntervalMs, Math.max(MIN_WAIT_MS, next - Date.now()));
  }

  /** A target's jobs in hand, and (a webhook) the room offered for its handed-over jobs. */
  private held(target: string): number {
    const inHand = this.inHand.get(target) ?? 0;
    return target.startsWith("W") ? inHand + (this.granted.get(target.slice(1)) ?? 0) : inHand;
  }

  /** The targets with as many jobs in hand as they may have, as claims leave them out. */
  private saturatedTargets(): WebhookTargets | undefined {
    let skip: WebhookTargets | undefined;
    const targets = new Set([...this.inHand.keys(), ...[...this.granted.keys()].map((sid) => `W${sid}`)]);
    for (const target of targets) {
      if (this.held(target) < this.perTargetLimit) continue;
      skip ??= { webhookSids: [], callbackUrls: [] };
      if (target.startsWith("W")) skip.webhookSids.push(target.slice(1));
      else skip.callbackUrls.push(target.slice(1));
    }
    return skip;
  }

  private begin(job: WebhookJob): void {
    const target = targetOf(job);
    this.inHand.set(target, (this.inHand.get(target) ?? 0) + 1);
    this.busy += 1;
    // The slot (and the target's share) is given back once the POST is answered, not once the
    // attempt's record is committed: slots bound what waits on receivers, and a record waits on the
    // store (a commit, an fsync on SQLite) while the next POSTs could already go. The job stays in
    // inFlight, its lease renewed, until it is recorded.
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.busy -= 1;
      const left = (this.inHand.get(target) ?? 1) - 1;
      if (left === 0) this.inHand.delete(target);
      else this.inHand.set(target, left);
      // A freed slot matters to the loop only when jobs wait (a target left out of claims may have
      // some); new ones arrive with a nudge.
      if (this.backlog || this.stopping || left === this.perTargetLimit - 1) this.signal.wake();
      if (job.webhook_sid !== null && this.activeHooks.has(job.webhook_sid)) this.scheduleOffer();
    };
    const key = `${target}\u0000${job.message_sid ?? job.sid}`;
    const before = this.chains.get(key);
    const task = (before ? before.then(() => this.attempt(job, release)) : this.attempt(job, release))
      .catch((error: unknown) => {
        // Not recorded: the lease runs out and the job is tried again.
        this.deps.logger.error({ err: error, sid: job.sid }, "webhooks: an attempt failed unrecorded");
      })
      .finally(() => {
        this.inFlight.delete(job.sid);
        if (this.chains.get(key) === task) this.chains.delete(key);
        release();
      });
    this.chains.set(key, task);
    this.inFlight.set(job.sid, task);
  }

  /** Sends the job and records the attempt; `postDone` is called once the POST is answered. */
  private async attempt(job: WebhookJob, postDone: () => void): Promise<void> {
    if (this.abandon.signal.aborted) return;
    const url = (job.webhook?.url ?? job.callback_url) as string;
    const result = await this.hosts.run(hostOf(url), () => {
      if (this.abandon.signal.aborted) return Promise.resolve(null);
      // Signed once its turn has come: the timestamp is the POST's, however long it waited.
      const request = this.request(job);
      return this.poster.post(request.url, request.headers, request.body, this.abandon.signal);
    });
    // Cut by the shutdown: not an attempt of the receiver's; the lease is released for the next start.
    if (result === null || this.abandon.signal.aborted) return;
    postDone();
    if (!result.delivered)
      this.deps.metrics?.webhookAttemptFailed(job.webhook_sid ? "webhook" : "status_callback");
    const record = this.recordOf(job, url, result);
    const outcome = await this.recorder.add(record);
    if (record.retryAt !== null && job.webhook_sid !== null) this.stopHandingOff(job.webhook_sid);
    this.report(job, record, result, outcome);
  }

  private request(job: WebhookJob): { url: string; headers: Record<string, string>; body: string } {
    if (job.webhook && job.event) {
      const body = eventBody(job.event);
      return {
        url: job.webhook.url,
        body,
        headers: {
          "content-type": "application/json",
          ...signatureHeaders(
            this.secret(job.webhook.secret_sealed, job.webhook_sid as string),
            job.event.sid,
            body,
            new Date(),
          ),
        },
      };
    }
    if (job.message && job.callback_url) {
      return {
        url: job.callback_url,
        body: statusCallbackForm(job.message),
        headers: { "content-type": "application/x-www-form-urlencoded" },
      };
    }
    throw new Error(`webhook job ${job.sid} has nothing to send`);
  }

  private secret(sealed: string, webhookSid: string): string {
    let secret = this.secrets.get(sealed);
    if (secret === undefined) {
      secret = this.deps.openSecret(sealed, webhookSid);
      // Opened secrets are kept for reuse, a bounded number: a rotated secret's old entry ages out.
      if (this.secrets.size >= 1000) this.secrets.clear();
      this.secrets.set(sealed, secret);
    }
    return secret;
  }

  private recordOf(job: WebhookJob, url: string, result: PostResult): WebhookAttemptRecord {
    const now = Date.now();
    const attempt = job.attempts + 1;
    const retryAt = result.delivered
      ? null
      : nextRetryAt(attempt, this.settings.retryBaseMs, job.created_at, now);
    const outcome = result.delivered ? "delivered" : retryAt !== null ? "retrying" : "failed";
    const failure = result.failure;
    const failureText = failure ? `${failure.code}: ${failure.message}` : null;
    return {
      owner: this.deps.owner,
      // Only what the store needs: the job's event and webhook (its sealed secret) stay here.
      job: {
        sid: job.sid,
        account_sid: job.account_sid,
        webhook_sid: job.webhook_sid,
        message_sid: job.message_sid,
      },
      now,
      outcome,
      retryAt,
      delivery:
        job.webhook_sid !== null && job.event
          ? {
              sid: newSid("DL", now),
              account_sid: job.account_sid,
              webhook_sid: job.webhook_sid,
              event_sid: job.event.sid,
              event_type: job.event.type,
              message_sid: job.message_sid,
              attempt,
              date_created: now,
              status_code: result.statusCode,
              latency_ms: result.latencyMs,
              outcome,
              error: failureText,
              response_body: result.responseBody,
            }
          : null,
      failure: failure ? this.failureNotices(job, url, result, failureText as string, attempt) : null,
      disableIfFailingSince: job.webhook_sid !== null && failure ? now - this.settings.disableAfterMs : null,
    };
  }

  /** What the Notifications about a failed attempt say, should the store find one due. */
  private failureNotices(
    job: WebhookJob,
    url: string,
    result: PostResult,
    failureText: string,
    attempt: number,
  ): NonNullable<WebhookAttemptRecord["failure"]> {
    const requestUrl = withoutQuery(url);
    const disableAfter = formatDuration(this.settings.disableAfterMs);
    const what =
      job.webhook_sid !== null
        ? `event ${job.event_sid} (${job.event?.type}) to webhook ${job.webhook_sid}`
        : `the StatusCallback of message ${job.message_sid}`;
    return {
      requestUrl,
      responseBody: result.responseBody,
      startedFailing: `Webhook ${job.webhook_sid} started failing: POST ${requestUrl} failed with ${failureText}. Its deliveries are retried; if it keeps failing for ${disableAfter} it is disabled.`,
      disabled: `Webhook ${job.webhook_sid} was disabled: its deliveries failed for more than ${disableAfter}, the last one (POST ${requestUrl}) with ${failureText}. Its queued deliveries were dropped and its events kept: fix the receiver, enable the webhook again and replay the events.`,
      givenUp: `Gave up delivering ${what} after ${attempt} attempts; the last one (POST ${requestUrl}) failed with ${failureText}.`,
    };
  }

  private report(
    job: WebhookJob,
    record: WebhookAttemptRecord,
    result: PostResult,
    outcome: WebhookAttemptResult,
  ): void {
    const { logger } = this.deps;
    if (record.outcome === "delivered" && outcome.held) {
      // The common case, kept cheap: no URL to parse.
      logger.debug(
        { sid: job.sid, attempt: job.attempts + 1, status: result.statusCode },
        "webhooks: delivered",
      );
      return;
    }
    // Only the host: a URL's path or query may carry the application's own secret.
    const fields = {
      sid: job.sid,
      webhook: job.webhook_sid,
      message: job.message_sid,
      host: hostOf(job.webhook?.url ?? job.callback_url ?? ""),
      attempt: job.attempts + 1,
      outcome: record.outcome,
      status: result.statusCode,
      error: result.failure?.message,
    };
    if (!outcome.held) logger.debug(fields, "webhooks: job taken over by another process meanwhile");
    else if (outcome.disabled)
      logger.warn({ ...fields, dropped: outcome.dropped }, "webhooks: webhook disabled");
    else if (record.outcome === "failed") logger.warn(fields, "webhooks: delivery given up");
    else if (outcome.startedFailing) logger.info(fields, "webhooks: webhook started failing; retrying");
    else logger.debug(fields, "webhooks: delivery failed; retrying");
    // An early retry (tests' short base delay) is due before the next poll: wake for it.
    if (record.retryAt !== null && record.retryAt - Date.now() < this.settings.pollIntervalMs) {
      setTimeout(
        () => {
          this.othersMayWait = true;
          this.signal.wake();
        },
        Math.max(0, record.retryAt - Date.now()),
      ).unref();
    }
  }

  private async renewLeases(): Promise<void> {
    if (this.inFlight.size === 0) return;
    try {
      await this.deps.store.renewLeases(
        this.deps.owner,
        [...this.inFlight.keys()],
        Date.now() + this.settings.leaseMs,
        "webhook_queue",
      );
    } catch (error) {
      this.deps.logger.warn({ err: error }, "webhooks: could not renew leases");
    }
  }
}

/**
 * Attempts finishing together are written in one store call (one transaction, one commit): with a
 * webhook on every event, a commit per attempt would cost a fsync per event on SQLite.
 */
class BatchedRecorder {
  private pending: Array<{
    record: WebhookAttemptRecord;
    resolve: (result: WebhookAttemptResult) => void;
    reject: (error: unknown) => void;
  }> = [];
  private writing = false;

  constructor(private readonly write: (records: WebhookAttemptRecord[]) => Promise<WebhookAttemptResult[]>) {}

  add(record: WebhookAttemptRecord): Promise<WebhookAttemptResult> {
    return new Promise((resolve, reject) => {
      this.pending.push({ record, resolve, reject });
      if (!this.writing) {
        this.writing = true;
        // The attempts finishing in this turn of the event loop join the batch; those finishing
        // while it is written join the next one.
        setImmediate(() => void this.flush());
      }
    });
  }

  private async flush(): Promise<void> {
    while (this.pending.length > 0) {
      const batch = this.pending;
      this.pending = [];
      try {
        const results = await this.writeWhileTransient(batch.map((entry) => entry.record));
        batch.forEach((entry, i) => {
          entry.resolve(results[i] ?? { held: false, startedFailing: false, disabled: false, dropped: 0 });
        });
      } catch (error) {
        for (const entry of batch) entry.reject(error);
      }
    }
    this.writing = false;
  }

  /**
   * Writes, trying again a few times while the store is unreachable or its disk full: a POST made and
   * not recorded is made again once its lease runs out, a duplicate the receiver must then recognise.
   */
  private async writeWhileTransient(records: WebhookAttemptRecord[]): Promise<WebhookAttemptResult[]> {
    for (const pause of [250, 1000, 4000, undefined]) {
      try {
        return await this.write(records);
      } catch (error) {
        if (pause === undefined || !(isStoreUnavailable(error) || isStoreFull(error))) throw error;
        await new Promise((resolve) => setTimeout(resolve, pause));
      }
    }
    throw new Error("unreachable");
  }
}

/** A job's target: `W` + the webhook SID, or `C` + the callback URL. */
function targetOf(job: WebhookJob): string {
  return job.webhook_sid !== null ? `W${job.webhook_sid}` : `C${job.callback_url}`;
}

function hostOf(url: string): string {
  try {
    return new URL(url).hostname;
  } catch {
    return "";
  }
}

/** A URL as Notifications show it: without its query and fragment, which may carry a token. */
function withoutQuery(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.search = "";
    parsed.hash = "";
    parsed.username = "";
    parsed.password = "";
    return parsed.toString();
  } catch {
    return "";
  }
}

function formatDuration(ms: number): string {
  if (ms % 86_400_000 === 0) return `${ms / 86_400_000} day${ms === 86_400_000 ? "" : "s"}`;
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000} h`;
  if (ms % 1000 === 0) return `${ms / 1000} s`;
  return `${ms} ms`;
}
