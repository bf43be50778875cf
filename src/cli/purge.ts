import type { Config } from "../config/config.js";
import { formatDuration } from "../lifecycle/durations.js";
import { Purger } from "../lifecycle/purger.js";
import { openStore } from "../store/open-store.js";

/**
 * `mailroom purge [--dry-run]`: one purge pass now, with the retention settings given (the same
 * MAILROOM_* variables as the server's). Works beside a running server: SQLite's batches wait for
 * the write lock, PostgreSQL's take the installation's purge lock (a pass running elsewhere makes
 * this one end early, and it says so). Prints one JSON object.
 */
export async function runPurge(config: Config, options: { dryRun: boolean }): Promise<void> {
  const store = openStore(config);
  try {
    await store.migrate();
    const silent = { info() {}, error() {} };
    const purger = new Purger(
      { store, logger: silent },
      {
        defaults: { contentMs: config.contentRetentionMs, metadataMs: config.metadataRetentionMs },
        intervalMs: config.purgeIntervalMs,
      },
    );
    const retention = {
      content_retention: formatDuration(config.contentRetentionMs),
      metadata_retention: formatDuration(config.metadataRetentionMs),
    };
    if (options.dryRun) {
      const counts = await purger.dryRun();
      const wouldPurge = { content: counts.content, metadata: counts.metadata };
      process.stdout.write(
        `${JSON.stringify({ dry_run: true, ...retention, would_purge: wouldPurge }, null, 2)}\n`,
      );
      return;
    }
    // The operator asked for a pass now: the space it frees goes back now too, not at the next pass.
    const report = await purger.runPass(Date.now(), { giveBackAfter: true });
    process.stdout.write(
      `${JSON.stringify(
        {
          dry_run: false,
          ...retention,
          purged: { content: report.content, metadata: report.metadata, attachment_blobs: report.blobs },
          pages_freed: report.pagesFreed,
          another_process_purging: report.busy,
        },
        null,
        2,
      )}\n`,
    );
  } finally {
    await store.close();
  }
}
