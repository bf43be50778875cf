/**
 * `node dist/bench/webhook-floor.js`: the least CPU one webhook event can cost on this machine, as a
 * floor for the webhook row's target (issue 13). A receiver (a bare node:http server answering 204, in
 * a child process) and a sender in this process that does only what any Standard Webhooks sender must
 * per event: the JSON body, an HMAC-SHA256 signature, a keep-alive POST, reading the answer. No store,
 * no queue, no log. It prints CPU time per POST of the sender and of the receiver, for node:http (what
 * Mailroom's WebhookPoster uses) and undici's Pool. BENCH_FLOOR_POSTS (20000) POSTs each, 64 in flight
 * over 8 connections, as the bench's webhook row has them. Figures in docs/performance.md.
 */
import { fork } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import http from "node:http";
import { Pool } from "undici";

const POSTS = Number(process.env.BENCH_FLOOR_POSTS ?? 20000);
const IN_FLIGHT = 64;
const CONNECTIONS = 8;
const secret = randomBytes(32);

if (process.argv[2] === "receiver") {
  const server = http.createServer((request, response) => {
    request.resume();
    request.on("end", () => {
      response.writeHead(204);
      response.end();
    });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, "127.0.0.1", () => {
    const address = server.address();
    process.send?.({ port: typeof address === "object" && address ? address.port : 0 });
  });
  process.on("message", (message) => {
    if (message === "cpu") {
      const used = process.cpuUsage();
      process.send?.({ cpuMs: (used.user + used.system) / 1000 }, () => process.exit(0));
    }
  });
} else {
  await main();
}

interface SignedEvent {
  body: string;
  headers: Record<string, string>;
}

function signedEvent(n: number): SignedEvent {
  const body = JSON.stringify({
    type: "email.sent",
    timestamp: new Date().toISOString(),
    data: { message_sid: `EM${n}`, account_sid: "AC0", recipient: "someone@example.com" },
  });
  const id = `msg_${n}`;
  const timestamp = String(Math.floor(Date.now() / 1000));
  const signature = createHmac("sha256", secret).update(`${id}.${timestamp}.${body}`).digest("base64");
  return {
    body,
    headers: {
      "content-type": "application/json",
      "webhook-id": id,
      "webhook-timestamp": timestamp,
      "webhook-signature": `v1,${signature}`,
    },
  };
}

async function viaNodeHttp(port: number): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONNECTIONS, maxFreeSockets: CONNECTIONS });
  let next = 0;
  const lane = async () => {
    while (next < POSTS) {
      const event = signedEvent(next++);
      await new Promise<void>((resolve, reject) => {
        const request = http.request(
          {
            host: "127.0.0.1",
            port,
            method: "POST",
            path: "/hook",
            agent,
            headers: { ...event.headers, "content-length": String(Buffer.byteLength(event.body)) },
          },
          (response) => {
            response.resume();
            response.on("end", resolve);
          },
        );
        request.on("error", reject);
        request.end(event.body);
      });
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, lane));
  agent.destroy();
}

async function viaUndici(port: number): Promise<void> {
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: CONNECTIONS });
  let next = 0;
  const lane = async () => {
    while (next < POSTS) {
      const event = signedEvent(next++);
      const answer = await pool.request({
        path: "/hook",
        method: "POST",
        body: event.body,
        headers: event.headers,
      });
      await answer.body.dump();
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, lane));
  await pool.close();
}

async function measure(label: string, send: (port: number) => Promise<void>): Promise<void> {
  const receiver = fork(new URL(import.meta.url), ["receiver"]);
  const port = await new Promise<number>((resolve) =>
    receiver.once("message", (message: { port: number }) => resolve(message.port)),
  );
  const start = process.cpuUsage();
  await send(port);
  const used = process.cpuUsage(start);
  receiver.send("cpu");
  const receiverCpuMs = await new Promise<number>((resolve) =>
    receiver.once("message", (message: { cpuMs: number }) => resolve(message.cpuMs)),
  );
  const senderMs = (used.user + used.system) / 1000 / POSTS;
  // The receiver's whole life is counted (its start too): a slight overestimate, said in the docs.
  const receiverMs = receiverCpuMs / POSTS;
  console.log(
    `${label.padEnd(10)} sender ${senderMs.toFixed(4)} ms/POST, receiver ${receiverMs.toFixed(4)} ms/POST, ` +
      `both ${(senderMs + receiverMs).toFixed(4)}`,
  );
}

async function main(): Promise<void> {
  console.log(`${POSTS} signed POSTs, ${IN_FLIGHT} in flight over ${CONNECTIONS} keep-alive connections`);
  await measure("node:http", viaNodeHttp);
  await measure("undici", viaUndici);
}
