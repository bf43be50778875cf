/**
 * `npm run bench:retention`: what retention does to an SQLite store's size (issue 16). Not a timed
 * test: a measurement, whose numbers go in docs/operations.md.
 *
 * 1. Bytes per message: RETENTION_BYTES_MESSAGES (5000) 1 KB messages are accepted and delivered
 *    (capture), the log is checkpointed, and the file's size is divided by the count; again after a
 *    purge of their content, and after a purge of their rows (with the incremental vacuum the purge
 *    runs, the file shrinks each time).
 * 2. Steady state: a fresh store with MAILROOM_CONTENT_RETENTION=RETENTION_SECONDS (10 s),
 *    MAILROOM_METADATA_RETENTION twice that and MAILROOM_PURGE_INTERVAL=2s takes RETENTION_RATE (100)
 *    messages a second for RETENTION_RUN_SECONDS (six metadata retentions); every 5 s it prints the
 *    messages accepted, the rows kept, and the sizes of the database file and its WAL. Without
 *    retention the file grows with every message; with it, it levels off once the first messages'
 *    rows are purged.
 * 3. Accepts during a purge: RETENTION_P99_MESSAGES (20000) messages are stored, then the accept latency
 *    (p50, p99 of single sends, 20 at a time) is measured without a purge (RETENTION_P99_BASELINE_ACCEPTS,
 *    3000) and while one pass purges the content and then the rows of all of them, with a line every
 *    RETENTION_P99_REPORT_SECONDS (30) saying how far the pass got and the p99 of that window alone.
 *    RETENTION_P99_API_MESSAGES (default: all) of them are accepted and delivered through the API; the
 *    rest are clones of those written into the file (bench/retention-clone.ts: a million through the
 *    API takes 9 minutes). RETENTION_P99_PURGE_SECONDS (0: none) stops the purge after that long, and
 *    the bench says how far it got.
 *
 * RETENTION_PHASES (bytes,p99,steady) chooses the phases. The million-message measurement (issue 16):
 *   RETENTION_PHASES=p99 RETENTION_P99_MESSAGES=1000000 RETENTION_P99_API_MESSAGES=5000 \
 *   RETENTION_P99_BASELINE_ACCEPTS=10000 node dist/bench/retention-steady.js
 */
import { statSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { Purger } from "../src/lifecycle/purger.js";
import type { Mailroom } from "../src/server.js";
import { startInProcess } from "./in-process.js";
import { cloneMessages } from "./retention-clone.js";

const bytesMessages = Number(process.env.RETENTION_BYTES_MESSAGES ?? 5000);
const retentionSeconds = Number(process.env.RETENTION_SECONDS ?? 10);
const rate = Number(process.env.RETENTION_RATE ?? 100);
const runSeconds = Number(process.env.RETENTION_RUN_SECONDS ?? retentionSeconds * 2 * 6);
const p99Messages = Number(process.env.RETENTION_P99_MESSAGES ?? 20000);
/** How many of them go through the API; the rest are clones of those (bench/retention-clone.ts). */
const p99ApiMessages = Number(process.env.RETENTION_P99_API_MESSAGES ?? p99Messages);
/** Accepts timed without a purge, and the sends at a time in both measurements. */
const baselineAccepts = Number(process.env.RETENTION_P99_BASELINE_ACCEPTS ?? 3000);
const lanes = 20;
/** Stop the purge after this many seconds (0: let the pass end); the bench says how far it got. */
const purgeSeconds = Number(process.env.RETENTION_P99_PURGE_SECONDS ?? 0);
const reportSeconds = Number(process.env.RETENTION_P99_REPORT_SECONDS ?? 30);
const quiet = { info() {}, error() {} };

async function start(dataDir: string, env: Record<string, string>) {
  const server = await startInProcess(dataDir, env, { name: "retention", subject: "Retention message" });
  const send = (count: number) => server.send(count, Math.min(50, count));
  return { mailroom: server.mailroom, send, timed: server.timed };
}

/** A second connection on the file: counts, and a checkpoint so the main file holds everything. */
function inspect(dataDir: string) {
  const file = path.join(dataDir, "mailroom.db");
  const db = new BetterSqlite3(file, { timeout: 10_000 });
  const size = (name: string) => {
    try {
      return statSync(name).size;
    } catch {
      return 0;
    }
  };
  return {
    rows: (table: string) => (db.prepare(`select count(*) as n from ${table}`).get() as { n: number }).n,
    undelivered: () =>
      (
        db
          .prepare("select count(*) as n from email_messages where status not in ('sent', 'failed')")
          .get() as {
          n: number;
        }
      ).n,
    checkpoint: () => db.pragma("wal_checkpoint(TRUNCATE)"),
    clone: (count: number) => cloneMessages(db, count),
    dbBytes: () => size(file),
    pageSize: () => db.pragma("page_size", { simple: true }) as number,
    walBytes: () => size(`${file}-wal`),
    close: () => db.close(),
  };
}

async function settle(look: ReturnType<typeof inspect>) {
  while (look.undelivered() > 0) await new Promise((resolve) => setTimeout(resolve, 50));
}

const mb = (bytes: number) => (bytes / 1_048_576).toFixed(1);

async function bytesPerMessage(): Promise<void> {
  const dataDir = await mkdtemp(path.join(tmpdir(), "mailroom-retention-bytes-"));
  const { mailroom, send } = await start(dataDir, { MAILROOM_PURGE_INTERVAL: "100d" });
  const look = inspect(dataDir);
  try {
    const measure = (what: string) => {
      look.checkpoint();
      const bytes = look.dbBytes();
      console.log(
        `${what.padEnd(34)} ${String(bytes).padStart(11)} bytes  ${(bytes / bytesMessages).toFixed(0).padStart(6)} bytes/message`,
      );
    };
    look.checkpoint();
    const empty = look.dbBytes();
    console.log(`empty store                        ${String(empty).padStart(11)} bytes`);
    await send(bytesMessages);
    await settle(look);
    measure(`${bytesMessages} messages with content`);
    const purgeOnce = (contentMs: number, metadataMs: number) =>
      new Purger(
        { store: mailroom.store, logger: quiet },
        { defaults: { contentMs, metadataMs }, intervalMs: 3_600_000 },
      ).runPass(Date.now(), { giveBackAfter: true }); // as `mailroom purge` does: the space back now
    const content = await purgeOnce(1, 3_600_000);
    measure(`after content purge (${content.content})`);
    const rows = await purgeOnce(1, 1);
    measure(`after metadata purge (${rows.metadata})`);
  } finally {
    look.close();
    await mailroom.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

async function steadyState(): Promise<void> {
  const dataDir = await mkdtemp(path.join(tmpdir(), "mailroom-retention-steady-"));
  const { mailroom, send } = await start(dataDir, {
    MAILROOM_CONTENT_RETENTION: `${retentionSeconds}s`,
    MAILROOM_METADATA_RETENTION: `${retentionSeconds * 2}s`,
    MAILROOM_PURGE_INTERVAL: "2s",
  });
  const look = inspect(dataDir);
  console.log(
    `\nsteady state: ${rate} messages/s for ${runSeconds} s, content kept ${retentionSeconds} s, rows ${retentionSeconds * 2} s, purge every 2 s`,
  );
  console.log("  t (s)   accepted   rows kept   db MB   wal MB");
  let accepted = 0;
  const started = Date.now();
  let nextSample = started;
  try {
    while (Date.now() - started < runSeconds * 1000) {
      const tick = Date.now();
      await send(Math.max(1, Math.round(rate / 10)));
      accepted += Math.max(1, Math.round(rate / 10));
      if (Date.now() >= nextSample) {
        console.log(
          `${String(Math.round((Date.now() - started) / 1000)).padStart(7)} ${String(accepted).padStart(10)} ${String(
            look.rows("email_messages"),
          ).padStart(11)} ${mb(look.dbBytes()).padStart(7)} ${mb(look.walBytes()).padStart(8)}`,
        );
        nextSample += 5000;
      }
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, 100 - (Date.now() - tick))));
    }
  } finally {
    const totals = (mailroom as Mailroom).purger.totals;
    console.log(`purged: ${totals.content} contents, ${totals.metadata} rows in ${totals.passes} passes`);
    look.close();
    await mailroom.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

async function acceptsDuringPurge(): Promise<void> {
  const dataDir = await mkdtemp(path.join(tmpdir(), "mailroom-retention-p99-"));
  const { mailroom, send, timed } = await start(dataDir, { MAILROOM_PURGE_INTERVAL: "100d" });
  const look = inspect(dataDir);
  try {
    const viaApi = Math.min(p99ApiMessages, p99Messages);
    let t0 = performance.now();
    await send(viaApi);
    await settle(look);
    console.log(
      `\naccepts beside a purge of ${p99Messages} messages (${lanes} sends at a time): ${viaApi} accepted through the API in ${seconds(t0)} s`,
    );
    if (viaApi < p99Messages) {
      t0 = performance.now();
      const cloned = look.clone(p99Messages - viaApi);
      console.log(
        `${cloned.clones} clones of the ${cloned.templates} accepted ones written into the store in ${cloned.seconds.toFixed(1)} s`,
      );
    }
    look.checkpoint();
    console.log(`store: ${mb(look.dbBytes())} MB`);
    const line = (what: string, latencies: number[]) =>
      console.log(
        `${what.padEnd(40)} ${String(latencies.length).padStart(7)} accepts  p50 ${percentile(latencies, 50).toFixed(1).padStart(6)} ms  p99 ${percentile(latencies, 99).toFixed(1).padStart(6)} ms`,
      );
    let count = 0;
    line("without a purge", await timed(lanes, () => count++ < baselineAccepts));
    /** One pass of a purger with these retentions, timing accepts beside it; a line every reportSeconds. */
    const besidePass = async (what: string, retention: { contentMs: number; metadataMs: number }) => {
      const purger = new Purger(
        { store: mailroom.store, logger: quiet },
        { defaults: retention, intervalMs: 3_600_000 },
      );
      let purging = true;
      const started = performance.now();
      const pass = purger.runPass().finally(() => {
        purging = false;
      });
      // Each report line: how far the pass has got, and the accepts of the last window alone.
      let window: number[] = [];
      const reporter = setInterval(() => {
        const at = purger.progress;
        line(
          `  ${seconds(started).padStart(6)} s: ${at?.content ?? "-"} contents, ${at?.metadata ?? "-"} rows, ${at?.pagesFreed ?? "-"} pages back`,
          window,
        );
        window = [];
      }, reportSeconds * 1000);
      let ended = "done";
      const limit =
        purgeSeconds > 0
          ? setTimeout(() => {
              ended = "stopped";
              void purger.stop();
            }, purgeSeconds * 1000)
          : undefined;
      const during = await timed(
        lanes,
        () => purging,
        (ms) => window.push(ms),
      );
      clearInterval(reporter);
      clearTimeout(limit);
      const report = await pass;
      const elapsed = (performance.now() - started) / 1000;
      line(`${what} (${ended})`, during);
      console.log(
        `  the pass (${ended} after ${elapsed.toFixed(1)} s): ${report.content} contents and ${report.metadata} rows, ` +
          `${Math.round((report.content + report.metadata) / elapsed)} a second; ${report.pagesFreed} pages ` +
          `(${mb(report.pagesFreed * look.pageSize())} MB) given back`,
      );
    };
    await besidePass("during the purge", { contentMs: 1, metadataMs: 1 });
    // The pages that pass freed and the accepts beside it did not reuse go back at the next pass: its
    // cost is the purge's too. (A retention of an hour: the next pass has nothing else to do.)
    await besidePass("while the next pass gives space back", { contentMs: 3_600_000, metadataMs: 3_600_000 });
  } finally {
    look.close();
    await mailroom.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

const seconds = (since: number) => ((performance.now() - since) / 1000).toFixed(1);

const phases = new Set((process.env.RETENTION_PHASES ?? "bytes,p99,steady").split(","));
if (phases.has("bytes")) await bytesPerMessage();
if (phases.has("p99")) await acceptsDuringPurge();
if (phases.has("steady")) await steadyState();
