import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { FAST_RETRIES, getAttempts, getMessage, mxModeEnv } from "./helpers/delivery.js";
import { startTestDns, type TestDns } from "./helpers/dns-server.js";
import { sendEmail, startMailroom, type TestServer } from "./helpers/mailroom.js";
import { SmtpSink } from "./helpers/smtp-sink.js";
import { waitFor } from "./helpers/wait.js";

/**
 * MAILROOM_DOMAIN_WARMUP end to end: a real DNS server, a real MX sink, a schedule of per-minute
 * steps that started 25 s before the server, so its first step (1 message) ends about 35 s into the
 * test and the next one (3 messages) lets the waiting mail go. The counts live in the delivery thread,
 * whatever the store, so one store is enough here.
 */

const STEP_MS = 60_000;
/** Long enough for the first step to end and the waiting mail to leave, on a slow shared machine. */
const LATER_MS = 120_000;

describe("warm-up in mx mode: over the step's allowance mail waits in the queue, then leaves", () => {
  let dns: TestDns;
  let sink: SmtpSink;
  let server: TestServer;
  let stepEnds: number;
  const logLines: Array<Record<string, unknown>> = [];

  before(async () => {
    dns = await startTestDns();
    sink = await SmtpSink.start({ host: "127.0.0.2" });
    dns.set("mx.warm.example", [{ type: "A", address: "127.0.0.2" }]);
    dns.set("warm.example", [{ type: "MX", exchange: "mx.warm.example", priority: 10 }]);
    dns.set("free.example", [{ type: "MX", exchange: "mx.warm.example", priority: 10 }]);
    const startsAt = Date.now() - 25_000;
    stepEnds = startsAt + STEP_MS;
    server = await startMailroom({
      logLines,
      env: {
        ...mxModeEnv(dns.servers, sink.port),
        // free.example's warm-up is long over: it limits nothing, and the start says so.
        MAILROOM_DOMAIN_WARMUP: `warm.example=1,3/m from ${new Date(startsAt).toISOString()}; free.example=1/d from 2020-01-01`,
        // Few attempts: waiting for the warm-up must not use them up.
        MAILROOM_MAX_ATTEMPTS: "1",
        ...FAST_RETRIES,
      },
    });
  });
  after(async () => {
    await server?.close();
    await sink?.stop();
    await dns?.close();
  });

  async function send(to: string) {
    const response = await sendEmail(server, server.admin, { From: "sender@mailroom.example", To: to });
    assert.equal(response.status, 200, response.text);
    return response.json as { sid: string; message_id: string };
  }

  const receivedBy = (messageId: string) => sink.received.filter((m) => m.messageId === messageId);

  test("the first step's one message goes; the others wait for the next step, none fails, then all go", async () => {
    const first = await send("one@warm.example");
    const sent = await waitFor(`message ${first.sid} sent`, async () => {
      const message = await getMessage(server, server.admin, first.sid);
      return message.status === "sent" ? message : undefined;
    });
    assert.equal(sent.error_code ?? null, null, sent.error_message);
    assert.equal(receivedBy(first.message_id).length, 1);

    const waiting = [await send("two@warm.example"), await send("three@warm.example")];
    // A message to two domains: the one without a schedule gets it at once.
    const mixed = await send("four@warm.example, four@free.example");
    for (const accepted of [...waiting, mixed]) {
      const [attempt] = await waitFor(`the first attempt of ${accepted.sid}`, async () => {
        const attempts = await getAttempts(server, server.admin, accepted.sid);
        return attempts.length > 0 ? attempts : undefined;
      });
      assert.equal(attempt.error_code, 16130, attempt.error_message);
      assert.match(attempt.error_message, /MAILROOM_DOMAIN_WARMUP/);
      const message = await getMessage(server, server.admin, accepted.sid);
      assert.equal(message.status, "queued", message.error_message);
      assert.equal(message.error_code, 16130);
      // Retried when the next step begins, not after the usual backoff (next_attempt shows whole seconds).
      assert.equal(
        Date.parse(message.next_attempt),
        Math.floor(stepEnds / 1000) * 1000,
        message.next_attempt,
      );
    }
    assert.equal(Date.now() < stepEnds, true, "the first step was still on: the test's own timing premise");
    for (const accepted of waiting) assert.equal(receivedBy(accepted.message_id).length, 0);
    const [mixedAttempt] = await getAttempts(server, server.admin, mixed.sid);
    const states = Object.fromEntries(
      mixedAttempt.recipients.map((r: { address: string; state: string }) => [r.address, r.state]),
    );
    assert.deepEqual(states, { "four@warm.example": "deferred", "four@free.example": "accepted" });
    assert.deepEqual(
      receivedBy(mixed.message_id).map((m) => m.to),
      [["four@free.example"]],
    );

    // The next step allows three: all three leave, although MAILROOM_MAX_ATTEMPTS is 1.
    for (const accepted of [...waiting, mixed]) {
      const message = await waitFor(
        `message ${accepted.sid} sent after the step`,
        async () => {
          const current = await getMessage(server, server.admin, accepted.sid);
          return current.status === "sent" || current.status === "failed" ? current : undefined;
        },
        LATER_MS,
      );
      assert.equal(message.status, "sent", message.error_message);
      const attempts = await getAttempts(server, server.admin, accepted.sid);
      assert.deepEqual(
        attempts.map((a: { outcome: string }) => a.outcome),
        [accepted === mixed ? "partial" : "deferred", "accepted"],
      );
    }
    assert.ok(Date.now() >= stepEnds);
    for (const accepted of waiting) assert.equal(receivedBy(accepted.message_id).length, 1);
    assert.deepEqual(
      receivedBy(mixed.message_id).map((m) => m.to),
      [["four@free.example"], ["four@warm.example"]],
    );
  });

  test("the start names the warm-up schedules and warns of one already over", () => {
    const started = logLines.find((line) => String(line.msg).startsWith("delivery: "));
    assert.match(String(started?.msg), /2 warm-up schedule\(s\)/);
    const over = logLines.find((line) => String(line.msg).includes("the warm-up of free.example ended"));
    assert.ok(over, "the start warned");
    assert.match(String(over.msg), /ended on 2020-01-02T00:00:00\.000Z; it no longer limits anything/);
  });
});
