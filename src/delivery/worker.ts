import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { ByteGate } from "../domain/byte-gate.js";
import type { DeliveryMetrics } from "../metrics/metrics.js";
import { readStoredContent, storedContentOf } from "../model/email-message.js";
import type { DeliveryJob } from "../services/email-messages.js";
import type { Lease, MailStore, RetryContext } from "../store/types.js";
import type { Dispatcher } from "./dispatch.js";
import type { DeliveryLogger } from "./logger.js";
import type { RetryPolicy } from "./retry-policy.js";
import { settledWithin } from "./settled-within.js";
import { runAttempt, type SigningKeySource, type StepContext, startAttempt } from "./steps.js";
import { WakeSignal } from "./wake-signal.js";

export interface WorkerSettings {
  concurrency: number;
  leaseMs: number;
  /** See MailStore.startHeartbeat. */
  heartbeatTimeoutMs: number;
  pollIntervalMs: number;
  shutdownTimeoutMs: number;
  /** MAILROOM_DELIVERY_MEMORY: bytes of message content being composed and sent at once. */
  memoryBytes: number;
  policy: RetryPolicy;
}

export interface WorkerDeps {
  store: MailStore;
  dispatcher: Dispatcher;
  logger: DeliveryLogger;
  /** Told of each recorded attempt (/metrics); left out in tests that build a worker alone. */
  metrics?: DeliveryMetrics;
  /** The sign step's DKIM keys (src/domains/signing-keys.ts); absent: nothing is signed. */
  signingKeys?: SigningKeySource;
}

// When the queue says something is due but nothing could be claimed (a race with another worker),
// look again shortly rather than at once, so two workers can never spin against each other.
const MIN_WAIT_MS = 10;

/**
 * Takes queued messages to the transport: claims due messages with a lease, delivers up to
 * `concurrency` at once, and records every attempt together with the message's new state.
 * Between batches it sleeps until the next message is due, new mail is queued (in this process,
 * or announced by another one through the store) or a delivery finishes, and never longer than
 * `pollIntervalMs`: an idle worker makes one cheap query per poll interval and nothing more.
 */
export class DeliveryWorker {
  /** Names this process's leases; unique even for several servers in one process (tests). */
  readonly owner = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  private readonly inFlight = new Map<string, Promise<void>>();
  /** Slots promised to messages being accepted right now (see reserve). */
  private reserved = 0;
  /**
   * True while the queue may hold due messages this worker has not claimed: accepted messages are
   * then left to the queue, in order, instead of being handed over ahead of older ones.
   */
  private backlog = true;
  /**
   * The earliest due time of a message waiting unleased that this worker knows of: from its last look
   * at the queue, or told by wake() (a scheduled message accepted or moved). Once it has passed,
   * accepted mail is not handed over (it would overtake that message) and a busy loop still wakes for it.
   */
  private dueAt: number | null = null;
  private readonly signal = new WakeSignal();
  private running: Promise<void> | undefined;
  private stopping = false;
  /** Set when stop() gave up waiting: late results are dropped, their leases were released. */
  private abandoned = false;
  private stopListening: (() => Promise<void>) | undefined;
  /**
   * True while attempt records cannot be written (a full disk, the store unreachable): no new claims
   * or hand-offs then, since each would end in one more message sent and not recorded.
   */
  private recordsFailing = false;
  private renewTimer: NodeJS.Timeout | undefined;
  /**
   * A large message costs several times its size while it is composed, sent and its MIME stored, in
   * three threads: bounding the bytes delivered at once keeps 16 large messages from being in flight
   * together (300 slots are sized for small mail).
   */
  private readonly memory: ByteGate;

  private readonly steps: StepContext;

  constructor(
    private readonly deps: WorkerDeps,
    private readonly settings: WorkerSettings,
  ) {
    this.memory = new ByteGate(settings.memoryBytes);
    this.steps = {
      ...deps,
      policy: settings.policy,
      owner: this.owner,
      abandoned: () => this.abandoned,
      // The loop looks at the queue at least every poll interval, and sooner when something is due
      // sooner; only a retry due before its next look needs to wake it. (Waking it for every retry cost
      // a scan of the whole queue per failed attempt, and with a large backlog that slowed accepting.)
      retryDueAt: (at) => {
        if (at - Date.now() < this.settings.pollIntervalMs) this.signal.wake();
      },
      recordFailed: (error, failures) => this.recordFailed(error, failures),
      recordStored: () => this.recordStored(),
    };
  }

  async start(): Promise<void> {
    await this.deps.store.startHeartbeat(this.owner, this.settings.heartbeatTimeoutMs);
    this.stopListening = await this.deps.store.listenQueued(() => this.wake());
    // Renewing well before expiry keeps a slow delivery from being claimed twice.
    this.renewTimer = setInterval(() => void this.renewLeases(), Math.max(50, this.settings.leaseMs / 3));
    this.running = this.run();
  }

  /**
   * A lease for a message about to be accepted, when this worker has a free slot and nothing older
   * waits in the queue. The message is then stored already leased and handed over by `handOff` once
   * committed: no claim, no reading it back. Null means: store it unleased, for a worker to claim.
   * Every lease returned must end in `handOff` or `cancel`.
   */
  reserve(): Lease | null {
    if (!this.running || this.stopping || this.backlog || this.recordsFailing) return null;
    if (this.dueAt !== null && this.dueAt <= Date.now()) {
      // Mail queued earlier is due (a scheduled message, a retry): it goes first, by claim.
      this.backlog = true;
      return null;
    }
    if (this.inFlight.size + this.reserved >= this.settings.concurrency) {
      this.backlog = true;
      return null;
    }
    this.reserved += 1;
    return { owner: this.owner, expiresAt: Date.now() + this.settings.leaseMs };
  }

  /** The message reserved for is committed with its lease: deliver it now. */
  handOff(job: DeliveryJob): void {
    this.reserved -= 1;
    this.begin(job);
  }

  /** The message reserved for was not stored: give the slot back. */
  cancel(): void {
    this.reserved -= 1;
  }

  /**
   * New mail was queued: look at the queue now instead of at the end of the current sleep. `dueAt`:
   * when it is due, if later than now (SendAt), so that the loop's sleep ends then.
   */
  wake(dueAt?: number): void {
    if (dueAt !== undefined && (this.dueAt === null || dueAt < this.dueAt)) this.dueAt = dueAt;
    this.signal.wake();
  }

  /**
   * Stops claiming, waits up to shutdownTimeoutMs for the deliveries in flight, and releases the
   * leases of those that did not finish so the next start (or another process) takes them at once.
   */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.stopping = true;
    this.signal.wake();
    await this.running;
    await this.stopListening?.();
    const finished = await settledWithin([...this.inFlight.values()], this.settings.shutdownTimeoutMs);
    clearInterval(this.renewTimer);
    // Still beating while the deliveries finished; the leases left are released below.
    await this.deps.store.stopHeartbeat(this.owner).catch(() => {});
    if (!finished) {
      this.abandoned = true;
      // Taken before the connections are cut: cutting them ends those deliveries, which then leave inFlight.
      const sids = [...this.inFlight.keys()];
      // Cut the relay connections first: a send still under way must not complete after another
      // process has taken the released message, or it would be delivered twice.
      await this.deps.dispatcher.close();
      await this.deps.store.releaseLeases(this.owner, sids);
      // Expected on a stop with slow deliveries, and nothing is lost: information, not a warning.
      this.deps.logger.info(
        { released: sids.length },
        "deliveries still in flight at the shutdown timeout were released for the next start",
      );
    }
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      let waitMs: number;
      try {
        waitMs = await this.claimAndStart();
      } catch (error) {
        this.deps.logger.error({ err: error }, "delivery: could not read the queue; trying again shortly");
        waitMs = this.settings.pollIntervalMs;
      }
      if (waitMs > 0 && !this.stopping) await this.signal.wait(waitMs);
    }
  }

  /** Fills the free delivery slots from the queue; returns how long to sleep (0: look again now). */
  private async claimAndStart(): Promise<number> {
    const { store } = this.deps;
    const { concurrency, leaseMs, pollIntervalMs } = this.settings;
    const free = concurrency - this.inFlight.size - this.reserved;
    // Claim in batches: every claim is a commit (an fsync on SQLite), so claiming one message each time
    // one delivery finishes would cost a commit per message. Wait until half the slots are free; each
    // finishing delivery wakes the loop to check.
    if (free <= 0 || (this.inFlight.size > 0 && free < Math.ceil(concurrency / 2))) {
      // Busy: look again when a known message comes due (reserve then stops the hand-offs, and
      // finishing deliveries wake the loop), or after the poll interval.
      return this.dueAt !== null && this.dueAt > Date.now()
        ? Math.min(pollIntervalMs, Math.max(MIN_WAIT_MS, this.dueAt - Date.now()))
        : pollIntervalMs;
    }
    if (this.recordsFailing) return pollIntervalMs;
    const claimed = await store.claimDue(this.owner, Date.now(), leaseMs, free);
    // A message still in flight here can be claimed again only if its lease ran out meanwhile;
    // the claim then merely extended the lease, and the delivery under way carries on.
    const starting = claimed.filter((message) => !this.inFlight.has(message.sid));
    // What the retries among them need, read in one call rather than two per message: during a
    // relay outage nearly every claimed message is a retry, and those reads competed with accepting.
    const retries = starting.filter((message) => message.num_attempts > 0).map((message) => message.sid);
    // Should that read fail, each delivery reads its own (and reports its own failure).
    const contexts =
      retries.length > 0 ? await store.findRetryContexts(retries).catch(() => undefined) : undefined;
    for (const message of starting) this.begin({ message }, contexts?.get(message.sid));
    // A full claim may have left due messages behind; a short one emptied what was due.
    this.backlog = claimed.length === free;
    if (this.backlog) return 0;
    const next = await store.nextDueAt();
    this.dueAt = next;
    if (next === null) return pollIntervalMs;
    return Math.min(pollIntervalMs, Math.max(MIN_WAIT_MS, next - Date.now()));
  }

  private begin(job: DeliveryJob, retry?: RetryContext): void {
    const { message } = job;
    // One promise per delivery for its end, whichever way it ends (not a catch and a finally: two).
    const task = this.deliver(job, retry).then(
      () => this.finished(message.sid),
      (error: unknown) => {
        // The store failed, so no attempt was recorded: the lease runs out and the message is tried again.
        this.deps.logger.error({ err: error, sid: message.sid }, "delivery: could not record an attempt");
        this.finished(message.sid);
      },
    );
    this.inFlight.set(message.sid, task);
  }

  private finished(sid: string): void {
    this.inFlight.delete(sid);
    // A freed slot matters to the loop only when messages wait in the queue; otherwise new mail is
    // handed over directly, and waking the loop would cost two empty queries per delivery.
    if (this.backlog || this.stopping) this.signal.wake();
  }

  /** One attempt, step by step (steps.ts). `retry`: what a retried message needs; read there if not given. */
  private async deliver(job: DeliveryJob, retry?: RetryContext): Promise<void> {
    job.content ??= readStoredContent(storedContentOf(job.message));
    const bytes = contentBytes(job.message, job.content, retry);
    if (!this.memory.tryTake(bytes)) {
      // While it waits for room, its attachment bytes are not held: they are read from the store when
      // its turn comes. (Dropped from the job itself: the callers' frames still refer to it.)
      job.attachments = undefined;
      await this.memory.take(bytes);
    }
    try {
      if (this.abandoned) return;
      const started = startAttempt(job, retry, this.deps.store);
      await runAttempt(started instanceof Promise ? await started : started, this.steps);
    } finally {
      this.memory.give(bytes);
    }
  }

  private async recordFailed(error: unknown, failures: number): Promise<boolean> {
    if (this.abandoned) return false;
    if (!this.recordsFailing) {
      this.recordsFailing = true;
      this.backlog = true;
      this.deps.logger.error(
        { err: error },
        "delivery: attempt records cannot be written; no new deliveries until they can, and these are kept to record",
      );
    }
    // 0.5 s, 1 s, 2 s, then every 5 s: a full disk is freed by a person, an outage ends by itself.
    await new Promise((resolve) => setTimeout(resolve, Math.min(5000, 250 * 2 ** failures)));
    return !this.abandoned;
  }

  private recordStored(): void {
    if (!this.recordsFailing) return;
    this.recordsFailing = false;
    this.deps.logger.info("delivery: attempt records are written again; delivering");
    this.signal.wake();
  }

  private async renewLeases(): Promise<void> {
    if (this.inFlight.size === 0) return;
    try {
      await this.deps.store.renewLeases(
        this.owner,
        [...this.inFlight.keys()],
        Date.now() + this.settings.leaseMs,
      );
    } catch (error) {
      this.deps.logger.warn({ err: error }, "delivery: could not renew leases");
    }
  }
}

/** About what an attempt holds in memory: the texts and attachments, or the MIME a retry sends. */
function contentBytes(
  message: DeliveryJob["message"],
  content: NonNullable<DeliveryJob["content"]>,
  retry: RetryContext | undefined,
): number {
  if (retry?.mime !== undefined) return retry.mime.length;
  let bytes =
    (message.body_part?.length ?? 0) + (message.html_part?.length ?? 0) + (message.text_part?.length ?? 0);
  for (const attachment of content.attachments) bytes += attachment.size;
  return bytes;
}
