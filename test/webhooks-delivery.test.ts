import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { FAST_RETRIES, waitForFinal } from "./helpers/delivery.js";
import { sendEmail, startMailroom, type TestServer } from "./helpers/mailroom.js";
import { rawQuery } from "./helpers/raw-sql.js";
import { SmtpSink } from "./helpers/smtp-sink.js";
import { storeVariants } from "./helpers/stores.js";
import { waitFor } from "./helpers/wait.js";
import {
  createWebhook,
  insertWebhook,
  locationOf,
  type ReceivedRequest,
  type Receiver,
  startReceiver,
  verifyDelivery,
  type WebhookBody,
} from "./helpers/webhooks.js";

/** A relay that refuses bounce@… for good and takes everything else. */
function startSink(): Promise<SmtpSink> {
  return SmtpSink.start({
    rules: {
      recipient: (address) =>
        address.startsWith("bounce@") ? { code: 550, message: "5.1.1 Unknown user" } : undefined,
    },
  });
}

interface EventRow {
  sid: string;
  type: string;
  message_sid: string;
  recipient: string | null;
}

function eventsOf(server: TestServer, accountSid: string): Promise<EventRow[]> {
  return rawQuery<EventRow>(
    locationOf(server),
    "select sid, type, message_sid, recipient from email_events where account_sid = ? order by sid",
    [accountSid],
  );
}

for (const variant of await storeVariants()) {
  describe(`webhook deliveries (${variant.kind})`, { skip: variant.skip }, () => {
    let sink: SmtpSink;
    let server: TestServer;
    const receivers: Receiver[] = [];

    before(async () => {
      sink = await startSink();
      server = await startMailroom({
        store: variant.kind,
        env: {
          MAILROOM_SMTP_URL: sink.url,
          ...FAST_RETRIES,
          MAILROOM_WEBHOOK_RETRY_BASE_MS: "20",
          MAILROOM_WEBHOOK_POLL_INTERVAL_MS: "100",
          MAILROOM_SHUTDOWN_TIMEOUT_MS: "500",
        },
      });
    });
    after(async () => {
      await server?.close();
      await sink?.stop();
      for (const receiver of receivers) await receiver.close();
    });

    async function receiver(answer?: Parameters<typeof startReceiver>[0]): Promise<Receiver> {
      const started = await startReceiver(answer);
      receivers.push(started);
      return started;
    }

    test("a receiver verifying signatures gets every event, once or more, in order per message", async () => {
      const account = await server.createAccount(`signed-${variant.kind}@test.example`);
      const hooks = await receiver();
      const hook = await createWebhook(server, account, `${hooks.url}/events`);
      const sids: string[] = [];
      for (let i = 0; i < 6; i++) {
        const to = i === 2 ? "bounce@rcpt.example" : `reader${i}@rcpt.example`;
        const sent = await sendEmail(server, account, { To: to });
        assert.equal(sent.status, 200, sent.text);
        sids.push(sent.json.sid);
      }
      for (const sid of sids) await waitForFinal(server, account, sid);
      const events = await eventsOf(server, account.sid);
      // accepted and one final event (sent, or failed for bounce@) per message.
      assert.equal(events.length, 12);
      await waitFor("every event at the receiver", () =>
        events.every((e) => hooks.received.some((r) => r.headers["webhook-id"] === e.sid)),
      );

      const bodies: WebhookBody[] = hooks.received.map((request) => verifyDelivery(hook.secret, request));
      for (const [i, request] of hooks.received.entries()) {
        const body = bodies[i] as WebhookBody;
        assert.match(String(request.headers["content-type"]), /^application\/json/);
        assert.equal(request.headers["webhook-id"], body.data.event_sid);
        const event = events.find((e) => e.sid === body.data.event_sid);
        assert.ok(event, `a delivered event is stored: ${body.data.event_sid}`);
        assert.equal(body.type, event.type);
        assert.equal(body.data.message_sid, event.message_sid);
        assert.equal(body.data.account_sid, account.sid);
        assert.match(body.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
        if (event.type === "email.accepted") assert.equal(body.data.recipient, undefined);
        else assert.equal(body.data.recipient, event.recipient);
      }
      const failed = bodies.find((b) => b.type === "email.failed");
      assert.equal(failed?.data.recipient, "bounce@rcpt.example");
      assert.equal(failed?.data.error_code, 13101);
      assert.equal(failed?.data.smtp_code, 550);
      const sent = bodies.find((b) => b.type === "email.sent");
      assert.equal(sent?.data.smtp_code, 250);

      // In order per message: a message's accepted arrives before its final event.
      for (const sid of sids) {
        const order = bodies.filter((b) => b.data.message_sid === sid).map((b) => b.type);
        assert.equal(order[0], "email.accepted", `${sid}: ${order.join(", ")}`);
      }

      // Nothing is left queued, and each attempt is logged (in the transaction that removed its job).
      await waitFor("the webhook's queue to empty", async () => {
        const left = await rawQuery(
          locationOf(server),
          "select sid from webhook_queue where webhook_sid = ?",
          [hook.sid],
        );
        return left.length === 0;
      });
      const deliveries = await rawQuery<{
        event_sid: string;
        outcome: string;
        status_code: number;
        attempt: number;
      }>(
        locationOf(server),
        "select event_sid, outcome, status_code, attempt from webhook_deliveries where webhook_sid = ?",
        [hook.sid],
      );
      assert.equal(deliveries.length, hooks.received.length);
      assert.ok(
        deliveries.every((d) => d.outcome === "delivered" && d.status_code === 204 && d.attempt === 1),
      );
    });

    test("a webhook that wants some types gets only those", async () => {
      const account = await server.createAccount(`picky-${variant.kind}@test.example`);
      const hooks = await receiver();
      const hook = await createWebhook(server, account, `${hooks.url}/sent-only`, "email.sent");
      const sent = await sendEmail(server, account);
      await waitForFinal(server, account, sent.json.sid);
      const events = await eventsOf(server, account.sid);
      const sentEvent = events.find((e) => e.type === "email.sent");
      assert.ok(sentEvent);
      await waitFor("the sent event", () => hooks.received.length >= 1);
      // The accepted event was never queued for this webhook: only sent arrives.
      assert.deepEqual(
        hooks.received.map((r) => verifyDelivery(hook.secret, r).type),
        ["email.sent"],
      );
    });

    test("a receiver down for a while gets everything once it is back; the webhook's failing state and Notification", async () => {
      const account = await server.createAccount(`down-${variant.kind}@test.example`);
      let up = false;
      const hooks = await receiver(() => (up ? 204 : { status: 503, body: "down for maintenance" }));
      const hook = await insertWebhook(locationOf(server), account.sid, `${hooks.url}/down?token=s3cret`);
      const sids: string[] = [];
      for (let i = 0; i < 4; i++) sids.push((await sendEmail(server, account)).json.sid);
      for (const sid of sids) await waitForFinal(server, account, sid);
      const events = await eventsOf(server, account.sid);
      // Every event refused at least twice (the first try and the first retry) while down.
      await waitFor("two refusals of every event", () =>
        events.every((e) => hooks.received.filter((r) => r.headers["webhook-id"] === e.sid).length >= 2),
      );
      const [webhookRow] = await rawQuery<{ failing_since: number | null; enabled: number }>(
        locationOf(server),
        "select failing_since, enabled from webhooks where sid = ?",
        [hook.sid],
      );
      assert.ok(webhookRow?.failing_since, "failing_since is set by the first failure");
      const notices = await rawQuery<{
        log: number;
        error_code: number;
        message_text: string;
        request_url: string;
        request_method: string;
        response_body: string;
      }>(locationOf(server), "select * from notifications where account_sid = ? and error_code >= 14400", [
        account.sid,
      ]);
      // One warning when it started failing, not one per failure.
      assert.equal(notices.length, 1, JSON.stringify(notices));
      const [notice] = notices;
      assert.equal(notice?.log, 1);
      assert.equal(notice?.error_code, 14430);
      assert.equal(notice?.request_method, "POST");
      assert.equal(notice?.request_url, `${hooks.url}/down`, "the query (a token) is left out");
      assert.equal(notice?.response_body, "down for maintenance");
      assert.match(notice?.message_text ?? "", /14420: HTTP 503/);
      assert.doesNotMatch(notice?.message_text ?? "", /s3cret/);

      // Each refused attempt is counted in /metrics.
      const scrape = await (await fetch(`${server.url}/metrics`)).text();
      const failures = Number(
        /^mailroom_webhook_failures_total\{target="webhook"\} (\d+)$/m.exec(scrape)?.[1],
      );
      assert.ok(
        failures >= 2 * events.length,
        `mailroom_webhook_failures_total counts the refusals (${failures})`,
      );

      up = true;
      await waitFor(
        "every event delivered once the receiver is back",
        () =>
          events.every((e) =>
            hooks.received.some((r) => r.headers["webhook-id"] === e.sid && r.status === 204),
          ),
        20_000,
      );
      for (const request of hooks.received) verifyDelivery(hook.secret, request);
      await waitFor("failing_since cleared by a success", async () => {
        const [row] = await rawQuery<{ failing_since: number | null }>(
          locationOf(server),
          "select failing_since from webhooks where sid = ?",
          [hook.sid],
        );
        return row?.failing_since === null;
      });
      const readLog = () =>
        rawQuery<{ outcome: string; error: string | null; response_body: string | null }>(
          locationOf(server),
          "select outcome, error, response_body from webhook_deliveries where webhook_sid = ? order by date_created, sid",
          [hook.sid],
        );
      // Attempts are recorded in batches, a moment after the receiver answered.
      await waitFor(
        "a delivered attempt logged per event",
        async () => (await readLog()).filter((d) => d.outcome === "delivered").length >= events.length,
      );
      const log = await readLog();
      assert.ok(log.some((d) => d.outcome === "retrying" && d.error?.startsWith("14420: HTTP 503")));
      assert.equal(log.filter((d) => d.outcome === "delivered").length, events.length);
    });

    test("a webhook failing longer than MAILROOM_WEBHOOK_DISABLE_AFTER_MS is disabled, with a Notification", async () => {
      const server = await startMailroom({
        store: variant.kind,
        env: {
          MAILROOM_SMTP_URL: sink.url,
          ...FAST_RETRIES,
          MAILROOM_WEBHOOK_RETRY_BASE_MS: "20",
          MAILROOM_WEBHOOK_POLL_INTERVAL_MS: "100",
          MAILROOM_WEBHOOK_DISABLE_AFTER_MS: "400",
          MAILROOM_SHUTDOWN_TIMEOUT_MS: "500",
        },
      });
      try {
        await disabledAfterFailing(server);
      } finally {
        await server.close();
      }
    });

    async function disabledAfterFailing(server: TestServer): Promise<void> {
      const account = await server.createAccount(`dead-${variant.kind}@test.example`);
      const hooks = await receiver(() => ({ status: 500, body: "broken" }));
      const hook = await insertWebhook(locationOf(server), account.sid, `${hooks.url}/dead`);
      const first = await sendEmail(server, account);
      await waitForFinal(server, account, first.json.sid);
      await waitFor("the webhook disabled", async () => {
        const [row] = await rawQuery<{ enabled: number }>(
          locationOf(server),
          "select enabled from webhooks where sid = ?",
          [hook.sid],
        );
        return row?.enabled === 0;
      });
      const notices = await rawQuery<{ log: number; error_code: number; message_text: string }>(
        locationOf(server),
        "select log, error_code, message_text from notifications where account_sid = ? and error_code >= 14400 order by sid",
        [account.sid],
      );
      assert.deepEqual(
        notices.map((n) => [n.log, n.error_code]),
        [
          [1, 14430],
          [0, 14431],
        ],
      );
      assert.match(notices[1]?.message_text ?? "", new RegExp(`Webhook ${hook.sid} was disabled`));
      // Its queued jobs are gone, the events stay, and new events queue nothing for it.
      const jobs = () =>
        rawQuery(locationOf(server), "select sid from webhook_queue where webhook_sid = ?", [hook.sid]);
      await waitFor("its queued jobs dropped", async () => (await jobs()).length === 0);
      const second = await sendEmail(server, account);
      await waitForFinal(server, account, second.json.sid);
      assert.equal((await jobs()).length, 0);
      assert.equal((await eventsOf(server, account.sid)).length, 4);
    }

    test("the last retry's failure gives the job up with a Notification; a disabled webhook's job is dropped unsent", async () => {
      const receiver = await startReceiver(() => ({ status: 500, body: "nope" }));
      const server = await startMailroom({
        store: variant.kind,
        env: {
          MAILROOM_SMTP_URL: sink.url,
          // A failed job waits a minute: the test moves it forward itself.
          MAILROOM_WEBHOOK_RETRY_BASE_MS: "60000",
          MAILROOM_WEBHOOK_POLL_INTERVAL_MS: "100",
          MAILROOM_SHUTDOWN_TIMEOUT_MS: "300",
        },
      });
      try {
        const at = locationOf(server);
        const hook = await createWebhook(
          server,
          server.admin,
          `${receiver.url}/hook?key=k1`,
          "email.accepted",
        );
        const sent = await sendEmail(server, server.admin, { StatusCallback: `${receiver.url}/cb` });
        await waitForFinal(server, server.admin, sent.json.sid);
        const jobsOf = () =>
          rawQuery<{ sid: string; attempts: number; lease_owner: string | null }>(
            at,
            "select sid, attempts, lease_owner from webhook_queue where message_sid = ? order by sid",
            [sent.json.sid],
          );
        await waitFor("both jobs failed once and wait for their retry", async () => {
          const jobs = await jobsOf();
          return jobs.length === 2 && jobs.every((j) => j.attempts === 1 && j.lease_owner === null);
        });
        // As if six retries had failed already: the next failure is the last one.
        await rawQuery(at, "update webhook_queue set attempts = 7, due_at = ? where message_sid = ?", [
          Date.now(),
          sent.json.sid,
        ]);
        await waitFor("both jobs given up", async () => (await jobsOf()).length === 0);
        const notices = await rawQuery<{
          log: number;
          error_code: number;
          message_sid: string;
          message_text: string;
          request_url: string;
          response_body: string;
        }>(at, "select * from notifications where account_sid = ? and error_code = 14432 order by sid", [
          server.admin.sid,
        ]);
        assert.equal(notices.length, 2);
        for (const notice of notices) {
          assert.equal(notice.log, 0);
          assert.equal(notice.message_sid, sent.json.sid);
          assert.equal(notice.response_body, "nope");
          assert.match(
            notice.message_text,
            /^Gave up delivering .* after 8 attempts; the last one \(POST .*\) failed with 14420: HTTP 500/,
          );
        }
        assert.deepEqual(notices.map((n) => n.request_url).sort(), [
          `${receiver.url}/cb`,
          `${receiver.url}/hook`,
        ]);
        const [last] = await rawQuery<{ outcome: string; attempt: number }>(
          at,
          "select outcome, attempt from webhook_deliveries where webhook_sid = ? order by attempt desc",
          [hook.sid],
        );
        assert.deepEqual(last, { outcome: "failed", attempt: 8 });

        // A job whose webhook was disabled meanwhile is dropped when claimed, without a POST.
        const second = await sendEmail(server, server.admin);
        await waitFor("the second message's job failed once", async () => {
          const [job] = await rawQuery<{ attempts: number; lease_owner: string | null }>(
            at,
            "select attempts, lease_owner from webhook_queue where message_sid = ?",
            [second.json.sid],
          );
          return job?.attempts === 1 && job.lease_owner === null;
        });
        const posts = receiver.received.length;
        await rawQuery(at, "update webhooks set enabled = 0 where sid = ?", [hook.sid]);
        await rawQuery(at, "update webhook_queue set due_at = ? where message_sid = ?", [
          Date.now(),
          second.json.sid,
        ]);
        await waitFor(
          "the job dropped",
          async () =>
            (await rawQuery(at, "select sid from webhook_queue where message_sid = ?", [second.json.sid]))
              .length === 0,
        );
        assert.equal(receiver.received.length, posts, "no POST for a disabled webhook");
      } finally {
        await server.close();
        await receiver.close();
      }
    });

    test("each kind of failure is logged as such: a redirect not followed, a timeout, a long answer cut to 1 KiB", async () => {
      const receiver = await startReceiver((request) => {
        if (request.path === "/moved") return { status: 302, body: "see elsewhere" };
        if (request.path === "/slow") return "hang";
        return { status: 500, body: `${"é".repeat(600)}${"x".repeat(5000)}` };
      });
      const server = await startMailroom({
        store: variant.kind,
        env: {
          MAILROOM_SMTP_URL: sink.url,
          MAILROOM_WEBHOOK_TIMEOUT_MS: "300",
          MAILROOM_WEBHOOK_RETRY_BASE_MS: "60000",
          MAILROOM_WEBHOOK_POLL_INTERVAL_MS: "100",
          MAILROOM_SHUTDOWN_TIMEOUT_MS: "300",
        },
      });
      try {
        const at = locationOf(server);
        const hooks = {
          moved: await createWebhook(server, server.admin, `${receiver.url}/moved`, "email.accepted"),
          slow: await createWebhook(server, server.admin, `${receiver.url}/slow`, "email.accepted"),
          long: await createWebhook(server, server.admin, `${receiver.url}/long`, "email.accepted"),
        };
        await sendEmail(server, server.admin);
        const rows = await waitFor("an attempt of each", async () => {
          const found = await rawQuery<{
            webhook_sid: string;
            status_code: number | null;
            error: string;
            outcome: string;
            response_body: string | null;
          }>(at, "select webhook_sid, status_code, error, outcome, response_body from webhook_deliveries");
          return found.length === 3 ? found : undefined;
        });
        const of = (sid: string) => rows.find((r) => r.webhook_sid === sid);
        assert.equal(of(hooks.moved.sid)?.status_code, 302);
        assert.match(of(hooks.moved.sid)?.error ?? "", /^14421: HTTP 302: redirects are not followed/);
        assert.equal(of(hooks.moved.sid)?.response_body, "see elsewhere");
        assert.equal(of(hooks.slow.sid)?.status_code, null);
        assert.match(of(hooks.slow.sid)?.error ?? "", /^14422: no complete answer within 300 ms/);
        const long = of(hooks.long.sid);
        assert.equal(long?.status_code, 500);
        assert.match(long?.error ?? "", /^14420: HTTP 500/);
        // The first 1 KiB of the answer (512 two-byte characters), not the 6 KB sent.
        assert.equal(Buffer.byteLength(long?.response_body ?? ""), 1024);
        assert.equal(long?.response_body, "é".repeat(512));
        assert.ok(rows.every((r) => r.outcome === "retrying"));
        // Only one request each: no redirect was followed.
        assert.equal(receiver.received.length, 3);
      } finally {
        await server.close();
        await receiver.close();
      }
    });

    test("a stop cuts POSTs still unanswered at the shutdown timeout, unrecorded, and releases their jobs", async () => {
      const receiver = await startReceiver(() => "hang");
      const server = await startMailroom({
        store: variant.kind,
        keepData: true,
        env: {
          MAILROOM_SMTP_URL: sink.url,
          MAILROOM_WEBHOOK_TIMEOUT_MS: "60000",
          MAILROOM_WEBHOOK_POLL_INTERVAL_MS: "100",
          MAILROOM_SHUTDOWN_TIMEOUT_MS: "300",
        },
      });
      try {
        await createWebhook(server, server.admin, `${receiver.url}/hook`);
        const sent = await sendEmail(server, server.admin, { StatusCallback: `${receiver.url}/cb` });
        await waitForFinal(server, server.admin, sent.json.sid);
        await waitFor("POSTs in flight", () => receiver.received.length >= 2);
        const leased = await rawQuery(
          locationOf(server),
          "select sid from webhook_queue where lease_owner is not null",
        );
        assert.ok(leased.length >= 2);
        await server.mailroom.close();
        const jobs = await rawQuery<{ attempts: number; lease_owner: string | null }>(
          locationOf(server),
          "select attempts, lease_owner from webhook_queue",
        );
        assert.equal(jobs.length, 3, "accepted, sent and the callback are still queued");
        assert.ok(
          jobs.every((j) => j.lease_owner === null && j.attempts === 0),
          JSON.stringify(jobs),
        );
        const logged = await rawQuery(locationOf(server), "select sid from webhook_deliveries");
        assert.equal(logged.length, 0, "a cut POST is not an attempt");
      } finally {
        await server.close();
        await server.removeData();
        await receiver.close();
      }
    });

    test("with MAILROOM_WEBHOOK_ALLOW_PRIVATE off, a webhook or callback reaching 127.0.0.1 is refused at acceptance and at delivery", async () => {
      const receiver = await startReceiver();
      const server = await startMailroom({
        store: variant.kind,
        env: {
          MAILROOM_SMTP_URL: sink.url,
          MAILROOM_WEBHOOK_ALLOW_PRIVATE: "0",
          MAILROOM_WEBHOOK_RETRY_BASE_MS: "60000",
          MAILROOM_WEBHOOK_POLL_INTERVAL_MS: "100",
        },
      });
      try {
        // Inserted directly: the Webhooks resource would refuse both URLs at creation.
        const byName = await insertWebhook(
          locationOf(server),
          server.admin.sid,
          `http://localhost:${receiver.port}/n`,
        );
        const byAddress = await insertWebhook(
          locationOf(server),
          server.admin.sid,
          `http://[::ffff:127.0.0.1]:${receiver.port}/a`,
        );
        // A StatusCallback is checked when the message is sent…
        const refused = await sendEmail(server, server.admin, { StatusCallback: `${receiver.url}/callback` });
        assert.equal(refused.status, 400);
        assert.equal(refused.json.code, 14402);
        assert.match(
          refused.json.message,
          /^StatusCallback's host "127\.0\.0\.1" resolves to 127\.0\.0\.1, a loopback address/,
        );
        const sent = await sendEmail(server, server.admin);
        await waitForFinal(server, server.admin, sent.json.sid);
        // …and again at each POST: a callback job whose host now resolves to a refused address (DNS
        // changed since) is refused then. Inserted directly, as the acceptance check would refuse it.
        const now = Date.now();
        await rawQuery(
          locationOf(server),
          "insert into webhook_queue (sid, account_sid, message_sid, callback_url, attempts, created_at, due_at) values (?, ?, ?, ?, 0, ?, ?)",
          [
            `${sent.json.sid}CB`,
            server.admin.sid,
            sent.json.sid,
            `http://localhost:${receiver.port}/callback`,
            now,
            now,
          ],
        );
        const refusals = await waitFor("a refused attempt per event and webhook", async () => {
          const rows = await rawQuery<{
            webhook_sid: string;
            error: string;
            outcome: string;
            status_code: number | null;
          }>(locationOf(server), "select webhook_sid, error, outcome, status_code from webhook_deliveries");
          return rows.length >= 4 ? rows : undefined;
        });
        for (const row of refusals) {
          assert.equal(row.outcome, "retrying");
          assert.equal(row.status_code, null);
          assert.match(row.error, /^14424: /);
          assert.match(row.error, /loopback address/);
        }
        assert.ok(
          refusals.some((r) => r.webhook_sid === byName.sid && /localhost resolves to/.test(r.error)),
        );
        assert.ok(refusals.some((r) => r.webhook_sid === byAddress.sid));
        // The StatusCallback's attempt is not in the Deliveries log; it was rescheduled, not sent.
        await waitFor("the callback's refused attempt rescheduled", async () => {
          const [job] = await rawQuery<{ attempts: number }>(
            locationOf(server),
            "select attempts from webhook_queue where webhook_sid is null and message_sid = ?",
            [sent.json.sid],
          );
          return job?.attempts === 1;
        });
        assert.equal(receiver.received.length, 0, "nothing reached the receiver");
      } finally {
        await server.close();
        await receiver.close();
      }
    });

    /**
     * Sends `messages` messages to a server whose webhooks and callbacks all go to one receiver
     * that never answers, and returns the receiver once `requests` requests have reached it.
     */
    async function neverAnswering(
      settings: { concurrency: number; hostConcurrency: number },
      hooks: (server: TestServer, port: number) => Promise<void>,
      callbackHost: string,
      requests: number,
    ): Promise<Receiver> {
      const receiver = await startReceiver(() => "hang");
      const server = await startMailroom({
        store: variant.kind,
        env: {
          MAILROOM_SMTP_URL: sink.url,
          MAILROOM_WEBHOOK_CONCURRENCY: String(settings.concurrency),
          MAILROOM_WEBHOOK_HOST_CONCURRENCY: String(settings.hostConcurrency),
          // Long enough that every slot fills before the first POST times out, even on a loaded machine.
          MAILROOM_WEBHOOK_TIMEOUT_MS: "1500",
          // Each job is tried once here: its retry is a minute away.
          MAILROOM_WEBHOOK_RETRY_BASE_MS: "60000",
          MAILROOM_WEBHOOK_POLL_INTERVAL_MS: "50",
          MAILROOM_SHUTDOWN_TIMEOUT_MS: "200",
        },
      });
      try {
        await hooks(server, receiver.port);
        for (let i = 0; i < 15; i++) {
          const sent = await sendEmail(server, server.admin, {
            StatusCallback: `http://${callbackHost}:${receiver.port}/cb`,
          });
          assert.equal(sent.status, 200);
        }
        await waitFor(
          `${requests} requests, timed out in turn`,
          () => receiver.received.length >= requests,
          30_000,
        );
        const [queued] = await rawQuery<{ n: number }>(
          locationOf(server),
          "select count(*) as n from webhook_queue",
        );
        assert.ok(Number(queued?.n) > 0, "the rest waits in the queue");
        return receiver;
      } finally {
        await server.close();
        await receiver.close();
      }
    }

    test("a receiver that never answers, with many jobs queued, does not hold up another webhook's", async () => {
      const dead = await startReceiver(() => "hang");
      const healthy = await startReceiver();
      const server = await startMailroom({
        store: variant.kind,
        env: {
          MAILROOM_SMTP_URL: sink.url,
          // 8 slots; 2 connections per host, so at most 4 jobs of one target in hand, whatever the order
          // they are claimed in.
          MAILROOM_WEBHOOK_CONCURRENCY: "8",
          MAILROOM_WEBHOOK_HOST_CONCURRENCY: "2",
          MAILROOM_WEBHOOK_TIMEOUT_MS: "60000",
          MAILROOM_WEBHOOK_POLL_INTERVAL_MS: "50",
          MAILROOM_SHUTDOWN_TIMEOUT_MS: "200",
        },
      });
      try {
        const at = locationOf(server);
        const stuck = await insertWebhook(at, server.admin.sid, `http://localhost:${dead.port}/dead`, {
          events: "email.accepted",
        });
        for (let i = 0; i < 10; i++) assert.equal((await sendEmail(server, server.admin)).status, 200);
        await waitFor("the dead receiver's connections taken", () => dead.open() === 2);
        // Due after the ten stuck jobs: it must not wait for their minute-long timeouts.
        const hook = await createWebhook(server, server.admin, `${healthy.url}/ok`, "email.accepted");
        const sent = await sendEmail(server, server.admin);
        const [event] = await rawQuery<{ sid: string }>(
          at,
          "select sid from email_events where message_sid = ? and type = 'email.accepted'",
          [sent.json.sid],
        );
        await waitFor("the healthy webhook's event", () =>
          healthy.received.some((r) => r.headers["webhook-id"] === event?.sid),
        );
        verifyDelivery(hook.secret, healthy.received[0] as ReceivedRequest);
        const waiting = await rawQuery(
          at,
          "select sid from webhook_queue where webhook_sid = ? and attempts = 0 and lease_owner is null",
          [stuck.sid],
        );
        assert.ok(
          waiting.length >= 6,
          `the stuck webhook's other jobs wait in the queue (${waiting.length})`,
        );
        assert.ok(dead.maxOpen <= 2);
        const [inHand] = await rawQuery<{ n: number }>(
          at,
          "select count(*) as n from webhook_queue where webhook_sid = ? and lease_owner is not null",
          [stuck.sid],
        );
        assert.ok(Number(inHand?.n) <= 4, `at most 4 of the stuck webhook's jobs in hand (${inHand?.n})`);
      } finally {
        await server.close();
        await dead.close();
        await healthy.close();
      }
    });

    test("a receiver that never answers holds at most MAILROOM_WEBHOOK_CONCURRENCY connections", async () => {
      // One host, whose own bound is out of the way: only the process bound (5) limits.
      const receiver = await neverAnswering(
        { concurrency: 5, hostConcurrency: 100 },
        async (server, port) => {
          await insertWebhook(locationOf(server), server.admin.sid, `http://127.0.0.1:${port}/a`);
        },
        "127.0.0.1",
        10,
      );
      // Two targets (the webhook, the callback URL), each allowed half the slots: 4 at most here, and
      // jobs claimed in batches may not fill every slot, so only the bound is certain.
      assert.ok(receiver.maxOpen <= 5 && receiver.maxOpen >= 2, `at most 5 at once (${receiver.maxOpen})`);
    });

    test("a receiver that never answers holds at most MAILROOM_WEBHOOK_HOST_CONCURRENCY connections per host", async () => {
      // Two host names for one listener: webhook jobs to localhost, callbacks to 127.0.0.1. The
      // first claim takes all 30 jobs (64 slots); each host then has 3 open, not 15.
      const receiver = await neverAnswering(
        { concurrency: 64, hostConcurrency: 3 },
        async (server, port) => {
          await insertWebhook(locationOf(server), server.admin.sid, `http://localhost:${port}/b`, {
            events: "email.accepted",
          });
        },
        "127.0.0.1",
        12,
      );
      assert.deepEqual(
        [...receiver.maxOpenPerHost.entries()].sort(),
        [
          ["127.0.0.1", 3],
          ["localhost", 3],
        ],
        "3 at once per host, and each host reached it",
      );
    });
  });
}
