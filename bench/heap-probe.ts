/**
 * What the main thread keeps on its heap when it serves plain sends: a Mailroom (SQLite, relaying to
 * the bench's own SMTP sink) in this process, PROBE_MESSAGES plain form sends (default 2000, 50 at a
 * time) until delivered, then full GCs, then V8's heap figures. A module loaded at start instead of at
 * first use shows here; the figure moves by about 0.1 MB between runs.
 *
 *   npm run build && node --expose-gc --heap-growing-percent=100 --max-semi-space-size=4 dist/bench/heap-probe.js
 */
import { mkdtemp, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { getHeapStatistics } from "node:v8";
import { sendDelivered, startInProcess } from "./in-process.js";
import { startSink } from "./sink.js";

const messages = Number(process.env.PROBE_MESSAGES ?? 2000);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with node --expose-gc");

const dataDir = await mkdtemp(path.join(tmpdir(), "mailroom-heap-"));
const sink = await startSink("node");
const probe = await startInProcess(
  dataDir,
  { MAILROOM_SMTP_URL: `smtp://127.0.0.1:${sink.port}` },
  { name: "probe", subject: "Probe message" },
);
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

try {
  await sendDelivered(probe, sink, messages, 50);
  await pause(300);
  for (let i = 0; i < 3; i++) {
    gc();
    await pause(50);
  }
  const heap = getHeapStatistics();
  const mb = (bytes: number) => (bytes / 1e6).toFixed(2);
  console.log(`after ${messages} plain sends and full GCs, the main thread's heap:`);
  console.log(`  used    ${mb(heap.used_heap_size)} MB`);
  console.log(`  total   ${mb(heap.total_heap_size)} MB`);
  console.log(`  CommonJS modules loaded  ${Object.keys(createRequire(import.meta.url).cache).length}`);
} finally {
  await probe.mailroom.close();
  await sink.close();
  await rm(dataDir, { recursive: true, force: true });
}
