/**
 * A Mailroom in the bench's own process (createMailroom, as `serve` builds it) with one account, and
 * its plain send: a 1 KB form message through `app.inject`, so no sockets: Fastify, the hooks, the
 * handler, the store and relay threads, all real. For probes that measure what the server itself
 * costs (send-path-probe.ts); the end-to-end bench runs `mailroom serve` instead
 * (mailroom.ts).
 */

import { loadConfig } from "../src/config/config.js";
import { createMailroom, type Mailroom } from "../src/server.js";
import { bodyText } from "./message.js";

export interface InProcessMailroom {
  mailroom: Mailroom;
  /** One plain send; throws unless it is answered 200. */
  sendOne(): Promise<void>;
  /** `count` plain sends, `lanes` at a time (each lane sends one after another). */
  send(count: number, lanes: number): Promise<void>;
  /** Plain sends on `lanes` lanes while `going()`; each send's ms to `onSample` and in the result. */
  timed(lanes: number, going: () => boolean, onSample?: (ms: number) => void): Promise<number[]>;
}

/**
 * Starts it on `dataDir` with `env` (MAILROOM_* settings: the relay, a purge interval…) and creates
 * the account `{name}@example.com`, whose sends have the subject `{subject}`.
 */
export async function startInProcess(
  dataDir: string,
  env: Record<string, string>,
  account: { name: string; subject: string },
): Promise<InProcessMailroom> {
  const mailroom = await createMailroom(
    loadConfig({
      MAILROOM_DATA_DIR: dataDir,
      MAILROOM_HOST: "127.0.0.1",
      MAILROOM_PORT: "0",
      MAILROOM_LOG_LEVEL: "warn",
      ...env,
    }),
  );
  await mailroom.listen();
  const issued = await mailroom.accounts.create({
    emailAddress: `${account.name}@example.com`,
    parentSid: null,
  });
  const url = `/restcomm/2012-04-24/Accounts/${issued.account.sid}/Email/Messages.json`;
  const headers = {
    authorization: `Basic ${Buffer.from(`${issued.account.sid}:${issued.authToken}`).toString("base64")}`,
    "content-type": "application/x-www-form-urlencoded",
  };
  const payload = new URLSearchParams({
    From: "sender@example.com",
    To: "rcpt@example.net",
    Subject: account.subject,
    // The plain row's body (words, spaces and line breaks: `+` and `%0A` in the form), so the form parser
    // and the escape checks cost here what they cost in the bench.
    Body: bodyText(1024),
  }).toString();
  const inject = () => mailroom.app.inject({ method: "POST", url, headers, payload });
  const check = (response: Awaited<ReturnType<typeof inject>>) => {
    if (response.statusCode !== 200)
      throw new Error(`send answered ${response.statusCode}: ${response.body}`);
  };
  return {
    mailroom,
    async sendOne() {
      check(await inject());
    },
    async send(count, lanes) {
      let started = 0;
      const lane = async () => {
        while (started < count) {
          started++;
          check(await inject());
        }
      };
      await Promise.all(Array.from({ length: lanes }, lane));
    },
    async timed(lanes, going, onSample = () => {}) {
      const latencies: number[] = [];
      const lane = async () => {
        while (going()) {
          const started = performance.now();
          const response = await inject();
          const ms = performance.now() - started;
          latencies.push(ms);
          onSample(ms);
          check(response);
        }
      };
      await Promise.all(Array.from({ length: lanes }, lane));
      return latencies;
    },
  };
}

/** `count` plain sends, `lanes` at a time, then a wait (at most 120 s) until `sink` has received them all. */
export async function sendDelivered(
  probe: InProcessMailroom,
  sink: { counts(): { messages: number } },
  count: number,
  lanes: number,
): Promise<void> {
  const before = sink.counts().messages;
  await probe.send(count, lanes);
  const deadline = Date.now() + 120_000;
  while (sink.counts().messages - before < count) {
    if (Date.now() > deadline) throw new Error("the sink did not get every message within 120 s");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
