/**
 * `npm run bench:send-path`: what one plain send costs the server, measured in ways that do not depend on
 * how busy the machine is, for judging a change to the send path on a shared machine where the
 * end-to-end bench's delivered/s moves by 10% between runs.
 *
 * A Mailroom (SQLite, relaying to the bench's own SMTP sink) runs in this process; form sends of a 1 KB
 * message go through `app.inject` (no sockets: Fastify, the hooks, the handler, the store and relay
 * threads, all real), 50 at a time, until each is delivered. After a warm-up it reports, per message:
 *
 * - allocated KB on the main thread, from V8's sampling heap profiler with collected objects included:
 *   a count, the same on a loaded machine as on an idle one (within about 1%);
 * - CPU ms of the main thread and of all threads (the sink's included), from /proc: steadier than wall
 *   time under load, but shared caches still move it a few percent.
 *
 *   PROBE_MESSAGES=5000   messages measured (after PROBE_WARMUP=2000)
 *   PROBE_HEAP=0          no heap sampling (it inflates the main thread's count, e.g. under callgrind)
 *   MAILROOM_*=…          passed on to the Mailroom (e.g. MAILROOM_SMTP_CONNECT_TIMEOUT_MS=600000 under
 *                         callgrind, where the sink thread can miss the 10 s greeting and messages get retried)
 *   PROBE_HEAP_OUT=file   also writes the sampling profile there (open it in DevTools: where the bytes come from)
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { Session } from "node:inspector";
import { tmpdir } from "node:os";
import path from "node:path";
import { sendDelivered, startInProcess } from "./in-process.js";
import { startSink } from "./sink.js";

const messages = Number(process.env.PROBE_MESSAGES ?? 5000);
const warmup = Number(process.env.PROBE_WARMUP ?? 2000);
const sampleHeap = process.env.PROBE_HEAP !== "0";
const CONCURRENCY = 50;
const TICK_MS = 10; // /proc's clock ticks (USER_HZ 100)

interface SamplingNode {
  selfSize: number;
  children: SamplingNode[];
}

function post<T>(session: Session, method: string, params?: object): Promise<T> {
  return new Promise((resolve, reject) =>
    session.post(method, params, (error, result) => (error ? reject(error) : resolve(result as T))),
  );
}

/** CPU ms so far of each thread of this process, by thread id (the main thread's is the pid). */
function threadCpuMs(): Map<string, number> {
  const spent = new Map<string, number>();
  for (const tid of readdirSync("/proc/self/task")) {
    const fields = (readFileSync(`/proc/self/task/${tid}/stat`, "utf8").split(") ")[1] ?? "").split(" ");
    spent.set(tid, (Number(fields[11]) + Number(fields[12])) * TICK_MS);
  }
  return spent;
}

function totalBytes(node: SamplingNode): number {
  return node.children.reduce((sum, child) => sum + totalBytes(child), node.selfSize);
}

const dataDir = await mkdtemp(path.join(tmpdir(), "mailroom-probe-"));
const sink = await startSink("node");
const probe = await startInProcess(
  dataDir,
  {
    ...Object.fromEntries(
      Object.entries(process.env).filter(
        (entry): entry is [string, string] => entry[0].startsWith("MAILROOM_") && entry[1] !== undefined,
      ),
    ),
    MAILROOM_SMTP_URL: `smtp://127.0.0.1:${sink.port}`,
  },
  { name: "probe", subject: "Probe message" },
);

/** Sends `count` messages, CONCURRENCY at a time, and waits until the sink has them all. */
const send = (count: number) => sendDelivered(probe, sink, count, CONCURRENCY);

try {
  await send(warmup);
  const session = new Session();
  session.connect();
  if (sampleHeap) {
    await post(session, "HeapProfiler.enable");
    await post(session, "HeapProfiler.startSampling", {
      samplingInterval: 4096,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    });
  }
  const cpuBefore = threadCpuMs();
  await send(messages);
  const cpuAfter = threadCpuMs();
  const profile = sampleHeap
    ? (await post<{ profile: { head: SamplingNode } }>(session, "HeapProfiler.stopSampling")).profile
    : undefined;
  if (profile && process.env.PROBE_HEAP_OUT)
    writeFileSync(process.env.PROBE_HEAP_OUT, JSON.stringify(profile));
  const allocated = profile ? totalBytes(profile.head) : Number.NaN;
  session.disconnect();
  const main = String(process.pid);
  const spent = (tid: string) => (cpuAfter.get(tid) ?? 0) - (cpuBefore.get(tid) ?? 0);
  const all = [...cpuAfter.keys()].reduce((sum, tid) => sum + spent(tid), 0);
  const per = (value: number, digits: number) => (value / messages).toFixed(digits);
  console.log(`${messages} plain sends after ${warmup} of warm-up, per message:`);
  if (sampleHeap) console.log(`  allocated on the main thread  ${per(allocated / 1024, 1)} KB`);
  console.log(`  CPU, main thread              ${per(spent(main), 3)} ms`);
  console.log(`  CPU, all threads (sink too)   ${per(all, 3)} ms`);
} finally {
  await probe.mailroom.close();
  await sink.close();
  await rm(dataDir, { recursive: true, force: true });
}
