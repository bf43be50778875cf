import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { LocalDispatcher } from "../src/delivery/dispatch.js";
import type { DeliveryLogger } from "../src/delivery/logger.js";
import type { OutgoingMessage, SendReport, Transport } from "../src/delivery/transports/transport.js";
import { DeliveryWorker } from "../src/delivery/worker.js";
import type { MailStore } from "../src/store/types.js";
import { attemptRecord, emailRow, insertAccount } from "./helpers/store-rows.js";
import { openTestStore } from "./helpers/stores.js";
import { waitFor } from "./helpers/wait.js";

const quiet: DeliveryLogger = { debug() {}, info() {}, warn() {}, error() {} } as unknown as DeliveryLogger;

/** A transport that accepts everything and keeps what it was given. */
function recordingTransport(sent: OutgoingMessage[]): Transport {
  return {
    description: "test",
    async send(message): Promise<SendReport> {
      sent.push(message);
      return {
        recipients: message.envelope.to.map((address) => ({
          address,
          state: "accepted",
          smtp_code: 250,
          response: "250 OK",
        })),
        smtpCode: 250,
        response: "250 OK",
        failure: null,
      };
    },
    async close() {},
  };
}

/**
 * Retried messages are claimed together, and what they need (earlier attempts, the MIME of the first)
 * is read for all of them in one call. That read may fail; each delivery then reads its own.
 */
describe("delivery: what retries need, read per claim", () => {
  for (const failFirstRead of [false, true]) {
    test(`retries resend the stored MIME${failFirstRead ? ", also when the batched read fails" : ""}`, async () => {
      const env = await openTestStore("sqlite");
      const reads: number[] = [];
      const store = new Proxy(env.store, {
        get(target, property, receiver) {
          if (property === "findRetryContexts") {
            return (sids: readonly string[]) => {
              reads.push(sids.length);
              if (failFirstRead && reads.length === 1) return Promise.reject(new Error("read failed"));
              return target.findRetryContexts(sids);
            };
          }
          const value = Reflect.get(target, property, receiver);
          return typeof value === "function" ? value.bind(target) : value;
        },
      }) as MailStore;
      const sent: OutgoingMessage[] = [];
      const worker = new DeliveryWorker(
        {
          store,
          dispatcher: new LocalDispatcher(recordingTransport(sent)),
          logger: quiet,
        },
        {
          concurrency: 10,
          leaseMs: 60_000,
          heartbeatTimeoutMs: 15_000,
          pollIntervalMs: 50,
          shutdownTimeoutMs: 1000,
          memoryBytes: 32 * 1024 * 1024,
          policy: { maxAttempts: 5, maxAgeMs: 3_600_000, baseMs: 1000, maxMs: 1000 },
        },
      );
      try {
        const account = await insertAccount(env.store, "retry@example.org");
        const now = Date.now();
        // Three messages whose first attempt was deferred, with the MIME it composed: due again now.
        const rows = [1, 2, 3].map((i) => emailRow(account, { date_created: now - 10_000 + i }));
        for (const row of rows) await env.store.acceptEmail(row);
        assert.equal((await env.store.claimDue("earlier", now, 60_000, 10)).length, 3);
        for (const row of rows) {
          await env.store.recordAttempt(
            attemptRecord(
              account,
              row.sid,
              {
                owner: "earlier",
                mime: `Subject: stored for ${row.sid}\r\n\r\nbody\r\n`,
                status: "queued",
                retryAt: now - 1000,
                dateDelivered: null,
              },
              { outcome: "deferred", smtp_code: 451, response: "451 try later" },
            ),
          );
        }
        await worker.start();
        await waitFor("the three retries to be sent", () => sent.length === 3, 10_000);
        for (const row of rows) {
          const out = sent.find((message) => message.raw.includes(row.sid));
          assert.equal(
            out?.raw,
            `Subject: stored for ${row.sid}\r\n\r\nbody\r\n`,
            "the very bytes of the first attempt",
          );
        }
        // One read for the claim; after a failed one, one more per message.
        assert.deepEqual(reads, failFirstRead ? [3, 1, 1, 1] : [3]);
      } finally {
        await worker.stop();
        await env.cleanup();
      }
    });
  }
});
