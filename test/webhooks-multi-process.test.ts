import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { waitForFinal } from "./helpers/delivery.js";
import { sendEmail, startMailroom, type TestServer } from "./helpers/mailroom.js";
import { postgresUnavailableReason } from "./helpers/postgres.js";
import { rawQuery } from "./helpers/raw-sql.js";
import { SmtpSink } from "./helpers/smtp-sink.js";
import { waitFor } from "./helpers/wait.js";
import { insertWebhook, locationOf, startReceiver, verifyDelivery } from "./helpers/webhooks.js";

// Only PostgreSQL has several processes on one store (an SQLite data dir has one server).
const skip = (await postgresUnavailableReason()) ?? false;

describe("webhooks from two processes on one PostgreSQL store", { skip }, () => {
  test("each event is delivered, by one of them, once", async () => {
    const sink = await SmtpSink.start();
    const receiver = await startReceiver(() => 204);
    // Few slots and a short poll: each process claims often, its own events and the other's.
    const env = {
      MAILROOM_SMTP_URL: sink.url,
      MAILROOM_WEBHOOK_POLL_INTERVAL_MS: "50",
      MAILROOM_WEBHOOK_CONCURRENCY: "4",
    };
    let a: TestServer | undefined;
    let b: TestServer | undefined;
    try {
      a = await startMailroom({ store: "postgres", env });
      b = await startMailroom({
        databaseUrl: a.databaseUrl,
        dataDir: a.dataDir,
        admin: a.admin,
        keepData: true,
        env,
      });
      const hook = await insertWebhook(locationOf(a), a.admin.sid, `${receiver.url}/events`);
      const servers = [a, b];
      const sids = await Promise.all(
        Array.from({ length: 30 }, async (_, i) => {
          const server = servers[i % 2] as TestServer;
          const sent = await sendEmail(server, server.admin);
          assert.equal(sent.status, 200, sent.text);
          return sent.json.sid as string;
        }),
      );
      for (const sid of sids) await waitForFinal(a, a.admin, sid);
      const events = await rawQuery<{ sid: string }>(
        locationOf(a),
        "select sid from email_events where account_sid = ?",
        [a.admin.sid],
      );
      assert.equal(events.length, 60);
      await waitFor("every event delivered", () =>
        events.every((e) => receiver.received.some((r) => r.headers["webhook-id"] === e.sid)),
      );
      await waitFor(
        "the queue empty",
        async () =>
          (await rawQuery(locationOf(a as TestServer), "select sid from webhook_queue")).length === 0,
      );
      const perEvent = new Map<string, number>();
      for (const request of receiver.received) {
        const body = verifyDelivery(hook.secret, request);
        perEvent.set(body.data.event_sid, (perEvent.get(body.data.event_sid) ?? 0) + 1);
      }
      const twice = [...perEvent].filter(([, n]) => n > 1);
      assert.deepEqual(twice, [], "no event was delivered by both processes");
      const logged = await rawQuery<{ n: number }>(
        locationOf(a),
        "select count(*) as n from webhook_deliveries where webhook_sid = ?",
        [hook.sid],
      );
      assert.equal(Number(logged[0]?.n), 60);
    } finally {
      await b?.close();
      await a?.close();
      await receiver.close();
      await sink.stop();
    }
  });
});
