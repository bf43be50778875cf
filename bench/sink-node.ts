/** Our own SMTP sink, run in a worker thread so the load generator never slows it down (or vice versa). */
import { Worker } from "node:worker_threads";
import { undoable } from "./cleanup.js";
import type { Sink, SinkCounts } from "./sink.js";
import { SLOT, SLOTS } from "./sink-slots.js";

/** `alsoOn`: more loopback addresses the sink listens on, at the same port (MX hosts of the MX row). */
export async function startNodeSink(alsoOn: readonly string[] = []): Promise<Sink> {
  const shared = new SharedArrayBuffer(SLOTS * Float64Array.BYTES_PER_ELEMENT);
  const slots = new Float64Array(shared);
  const worker = new Worker(new URL("./sink-worker.js", import.meta.url), { workerData: { shared, alsoOn } });
  const close = undoable("stop the SMTP sink", () => worker.terminate().then(() => undefined));

  const next = (type: string) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const onMessage = (message: Record<string, unknown>) => {
        if (message.type !== type) return;
        worker.off("message", onMessage);
        worker.off("error", reject);
        resolve(message);
      };
      worker.on("message", onMessage);
      worker.once("error", reject);
    });

  // Messages kept whole since the last reset (in the order the worker posted them, reset-done included).
  let kept: Buffer[] = [];
  worker.on("message", (message: Record<string, unknown>) => {
    if (message.type === "reset-done") kept = [];
    if (message.type === "sample" && message.raw instanceof Uint8Array) kept.push(Buffer.from(message.raw));
  });

  const listening = await next("listening");
  const port = Number(listening.port);

  return {
    kind: "node",
    description: "the bench's own SMTP sink (bench/sink-worker.ts, a Node worker thread)",
    port,
    inspectsMessages: true,
    counts(): SinkCounts {
      return {
        messages: slots[SLOT.messages] ?? 0,
        bytes: slots[SLOT.bytes] ?? 0,
        duplicates: slots[SLOT.duplicates] ?? 0,
        signed: slots[SLOT.signed] ?? 0,
        firstAt: slots[SLOT.firstAt] || undefined,
        lastAt: slots[SLOT.lastAt] || undefined,
      };
    },
    async reset(samples = 0) {
      const done = next("reset-done");
      worker.postMessage({ type: "reset", samples });
      await done;
    },
    async samples(count, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while (kept.length < count && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      return kept.slice(0, count);
    },
    close,
  };
}
