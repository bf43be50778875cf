import type { FastifyBaseLogger } from "fastify";
import type { MailStore } from "../store/types.js";

/** How often expired Idempotency-Keys are looked for, and how many one delete takes. */
const PURGE_INTERVAL_MS = 60_000;
const PURGE_BATCH = 500;
/** A purge that keeps finding full batches stops after this many and goes on at the next interval. */
const MAX_BATCHES_PER_RUN = 20;

/**
 * Deletes expired Idempotency-Keys (kept 24 hours): once at start, then every minute, in deletes of
 * at most 500 rows taken from the expiry index (no scan of the live keys), so a purge never holds the
 * writer for long. Every process sharing PostgreSQL runs one; they only delete the same old rows.
 */
export class IdempotencyPurge {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly store: MailStore,
    private readonly logger: FastifyBaseLogger,
  ) {}

  start(): void {
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.purge().finally(() => this.schedule(PURGE_INTERVAL_MS));
    }, ms);
    this.timer.unref();
  }

  private async purge(): Promise<void> {
    try {
      for (let batch = 0; batch < MAX_BATCHES_PER_RUN && !this.stopped; batch++) {
        const deleted = await this.store.purgeIdempotencyKeys(Date.now(), PURGE_BATCH);
        if (deleted < PURGE_BATCH) return;
      }
    } catch (error) {
      // Tried again at the next interval; an outage is reported by the requests it fails.
      this.logger.warn({ err: error }, "purging expired idempotency keys failed");
    }
  }
}
