import type { PurgeCounts, PurgeCursor, PurgeCutoffs, PurgeKind } from "../store/lifecycle-queries.js";
import type { MailStore } from "../store/types.js";
import { type Retention, retentionExceptions } from "./retention.js";

export interface PurgerOptions {
  defaults: Retention;
  /** MAILROOM_PURGE_INTERVAL: the time between the end of one pass and the start of the next. */
  intervalMs: number;
  /** Messages per batch: one short transaction each. */
  batchSize?: number;
  /** Free pages handed back to the file system per step (SQLite), each step one short hold of the writer. */
  vacuumPages?: number;
}

export interface PassOptions {
  /**
   * After the pass, give back every free page now, not at the next pass (`mailroom purge`: the
   * operator wants the disk space back now).
   */
  giveBackAfter?: boolean;
}

/** What one pass did. */
export interface PassReport {
  content: number;
  metadata: number;
  blobs: number;
  /** Free pages given back to the file system (SQLite). */
  pagesFreed: number;
  /** PostgreSQL: another process was purging, so this pass stopped early. */
  busy: boolean;
}

/** Where a purge reports its passes (the server's logger; the CLI prints its own summary). */
export interface PurgeLog {
  info(details: object, message: string): void;
  error(details: object, message: string): void;
}

/**
 * 100 messages per transaction: measured (npm run bench:retention), batches of 500 held SQLite's writer
 * for tens of milliseconds each and the accept p99 during a purge rose from 23 to 133 ms.
 */
const DEFAULT_BATCH = 100;
const MAX_TIMER_MS = 2 ** 31 - 1;
/**
 * 50 pages per step (400 KB of 8 KiB pages). A step holds the writer while it moves pages; with 200
 * (on a 4.8 GB file of 8 KiB pages, after a purge of a million) a step took about 28 ms and the accept
 * p99 while the space went back rose from 25 to 80 ms (docs/operations.md, "The million"); a step a
 * quarter of that is about as long as a purge batch.
 */
const DEFAULT_VACUUM_PAGES = 50;

/**
 * The background purge (issue 16): every MAILROOM_PURGE_INTERVAL, content past its retention, then
 * messages past their metadata retention, in batches of one short transaction each, each batch
 * asked of the store thread separately so that accepts and attempt records get the writer between
 * them. On PostgreSQL, a process that finds another one purging (the purge's advisory lock) leaves
 * the pass to it.
 *
 * SQLite reuses the pages a purge frees for the rows written next, so under a steady load nothing
 * needs to be given back to the file system: a pass starts by giving back only the free pages still
 * unused since the previous pass (what the accepts of one interval did not need), in steps. Giving
 * back after every batch, as this did first, moved the newest pages of the file into the holes a
 * batch had just made (SQLite's incremental vacuum relocates pages from the end of the file): 2.7 to
 * 3.6 times the log writes of the purge itself, pages that the next accepts would have reused anyway.
 */
export class Purger {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<PassReport> | undefined;
  private current: PassReport | undefined;
  private stopping = false;
  /** Everything this purger purged since it was made (logs, tests: two processes never count the same rows). */
  readonly totals = { content: 0, metadata: 0, blobs: 0, passes: 0, busyPasses: 0 };

  constructor(
    private readonly deps: { store: MailStore; logger: PurgeLog },
    private readonly options: PurgerOptions,
  ) {}

  start(): void {
    this.stopping = false;
    this.schedule();
  }

  /** Stops the loop; a pass in progress ends after its current batch. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => {});
  }

  private schedule(dueAt = Date.now() + this.options.intervalMs): void {
    if (this.stopping) return;
    // A timer cannot wait more than about 24.8 days (a longer one fires at once): wait in steps.
    const wait = Math.min(Math.max(0, dueAt - Date.now()), MAX_TIMER_MS);
    this.timer = setTimeout(() => {
      if (Date.now() < dueAt) return this.schedule(dueAt);
      this.runPass()
        .catch((error: unknown) =>
          this.deps.logger.error({ err: error }, "purge pass failed; retried next interval"),
        )
        .finally(() => this.schedule());
    }, wait);
    this.timer.unref();
  }

  /** One pass now (also `mailroom purge`); a pass already running is waited for instead of run twice. */
  runPass(now = Date.now(), options: PassOptions = {}): Promise<PassReport> {
    this.running ??= this.pass(now, options).finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** How far the pass in progress has got (a copy), or undefined between passes (a bench reports it). */
  get progress(): PassReport | undefined {
    return this.current && { ...this.current };
  }

  /** What a pass would purge now, per kind (`mailroom purge --dry-run`). */
  async dryRun(now = Date.now()): Promise<PurgeCounts> {
    return this.deps.store.countPurgeable(await this.cutoffs(now));
  }

  private async pass(now: number, options: PassOptions): Promise<PassReport> {
    const report: PassReport = { content: 0, metadata: 0, blobs: 0, pagesFreed: 0, busy: false };
    this.current = report;
    try {
      await this.giveSpaceBack(report);
      const cutoffs = await this.cutoffs(now);
      for (const kind of ["content", "metadata"] as const) {
        if (!(await this.purgeAll(kind, cutoffs[kind], now, report))) break;
      }
      if (options.giveBackAfter) await this.giveSpaceBack(report);
    } finally {
      this.current = undefined;
    }
    this.totals.content += report.content;
    this.totals.metadata += report.metadata;
    this.totals.blobs += report.blobs;
    this.totals.passes += 1;
    if (report.busy) this.totals.busyPasses += 1;
    if (report.content + report.metadata > 0 || report.busy) {
      this.deps.logger.info({ purge: report }, "purge pass");
    }
    return report;
  }

  /** Batches of one kind until none is due; false when the pass must end (stopping, or another process purges). */
  private async purgeAll(kind: PurgeKind, cutoffs: PurgeCutoffs, now: number, report: PassReport) {
    const limit = this.options.batchSize ?? DEFAULT_BATCH;
    let after: PurgeCursor | undefined;
    for (;;) {
      if (this.stopping) return false;
      const started = performance.now();
      const batch = await this.deps.store.purgeBatch({ kind, cutoffs, now, limit, after });
      if (batch.busy) {
        report.busy = true;
        return false;
      }
      report[kind] += batch.messages;
      report.blobs += batch.blobs;
      if (batch.next === undefined) return true;
      after = batch.next;
      await restAfter(started);
    }
  }

  /** Free pages back to the file system (SQLite), a step at a time with rests, until none is left. */
  private async giveSpaceBack(report: PassReport): Promise<void> {
    const step = this.options.vacuumPages ?? DEFAULT_VACUUM_PAGES;
    while (!this.stopping) {
      const started = performance.now();
      const freed = await this.deps.store.giveSpaceBack(step);
      report.pagesFreed += freed;
      if (freed < step) return;
      await restAfter(started);
    }
  }

  /** Both kinds' cutoffs at `now`, from the settings and every account's effective retention. */
  private async cutoffs(now: number): Promise<Record<PurgeKind, PurgeCutoffs>> {
    const defaults = this.options.defaults;
    const exceptions = retentionExceptions(await this.deps.store.listAccounts(), defaults);
    const cutoffsOf = (pick: (retention: Retention) => number): PurgeCutoffs => {
      const groups = new Map<number, string[]>();
      for (const [sid, retention] of exceptions) {
        const before = now - pick(retention);
        groups.set(before, [...(groups.get(before) ?? []), sid]);
      }
      return {
        defaultBefore: now - pick(defaults),
        groups: [...groups].map(([before, accountSids]) => ({ before, accountSids })),
      };
    };
    return { content: cutoffsOf((r) => r.contentMs), metadata: cutoffsOf((r) => r.metadataMs) };
  }
}

/**
 * Rest as long as the step took: the purge has at most half of the store's time, and what queued
 * behind a step (accepts, attempt records) is written before the next one starts.
 */
function restAfter(started: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, performance.now() - started));
}
