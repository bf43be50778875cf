/**
 * Worker thread body of our own SMTP sink: a plain `net` server on a free loopback port that speaks the
 * SmtpSession dialogue, throws every message away, and counts it in shared memory.
 */
import net from "node:net";
import { parentPort, workerData } from "node:worker_threads";
import { SLOT } from "./sink-slots.js";
import { type ReceivedMessage, SmtpSession } from "./smtp-session.js";

const port = parentPort;
if (!port) throw new Error("sink-worker.ts must run as a worker thread");

const slots = new Float64Array((workerData as { shared: SharedArrayBuffer }).shared);
const seen = new Set<string>();
/** Messages still to keep whole and post to the main thread (asked for with a reset). */
let samplesWanted = 0;

const clock = () => performance.timeOrigin + performance.now();

function claimSample(): boolean {
  if (samplesWanted <= 0) return false;
  samplesWanted--;
  return true;
}

function onMessage({ bytes, messageId, signed, raw }: ReceivedMessage): void {
  const at = clock();
  if (slots[SLOT.messages] === 0) slots[SLOT.firstAt] = at;
  slots[SLOT.lastAt] = at;
  slots[SLOT.bytes] = (slots[SLOT.bytes] ?? 0) + bytes;
  if (signed) slots[SLOT.signed] = (slots[SLOT.signed] ?? 0) + 1;
  // Posted before the count below moves, so a caller that sees the count can wait for its samples.
  if (raw) port?.postMessage({ type: "sample", raw });
  if (messageId !== undefined) {
    if (seen.has(messageId)) slots[SLOT.duplicates] = (slots[SLOT.duplicates] ?? 0) + 1;
    else seen.add(messageId);
  }
  slots[SLOT.messages] = (slots[SLOT.messages] ?? 0) + 1;
}

function onConnection(socket: net.Socket): void {
  slots[SLOT.sessions] = (slots[SLOT.sessions] ?? 0) + 1;
  socket.setNoDelay(true);
  const session = new SmtpSession("sink.bench.localhost", onMessage, claimSample);
  socket.write(session.greeting());
  socket.on("data", (chunk: Buffer) => {
    const reply = session.feed(chunk);
    if (session.closed) socket.end(reply);
    else if (reply.length > 0) socket.write(reply);
  });
  socket.on("error", () => socket.destroy());
}

const server = net.createServer(onConnection);

// Direct-to-MX rows reach it as many MX hosts: the same sink on more loopback addresses, same port.
const alsoOn = (workerData as { alsoOn?: string[] }).alsoOn ?? [];

server.listen({ port: 0, host: "127.0.0.1", backlog: 1024 }, async () => {
  const address = server.address();
  const listening = typeof address === "object" && address ? address.port : 0;
  for (const host of alsoOn) {
    const extra = net.createServer(onConnection);
    await new Promise<void>((resolve, reject) => {
      extra.once("error", reject);
      extra.listen({ port: listening, host, backlog: 1024 }, resolve);
    });
  }
  port.postMessage({ type: "listening", port: listening });
});

port.on("message", (message: { type: string; samples?: number }) => {
  if (message.type === "reset") {
    slots.fill(0);
    samplesWanted = message.samples ?? 0;
    port.postMessage({ type: "reset-done" });
  }
});
