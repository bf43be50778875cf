import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ConfigError, loadConfig } from "../src/config/config.js";
import { newSid } from "../src/domain/ids.js";
import { waitForFinal } from "./helpers/delivery.js";
import { API, request, sendEmail, startMailroom, startPeer, type TestServer } from "./helpers/mailroom.js";
import { type Scrape, scrape } from "./helpers/metrics.js";
import { createTestSchema, startPostgresProxy } from "./helpers/postgres.js";
import { rawQuery } from "./helpers/raw-sql.js";
import { SmtpSink } from "./helpers/smtp-sink.js";
import { storeVariants } from "./helpers/stores.js";
import { waitFor } from "./helpers/wait.js";

/** Where a test server's data is, for rawQuery. */
const location = (server: TestServer) => ({
  dataDir: server.dataDir,
  databaseUrl: server.databaseUrl,
  databasePoolSize: 1,
});

const SEND_ROUTE = `${API}/Accounts/:accountSid/Email/Messages`;
const HOUR = "3600000";

/** Waits for a scrape in which `ready` holds, and returns it (counters move after the answer that caused them). */
function scrapeUntil(server: TestServer, what: string, ready: (now: Scrape) => boolean): Promise<Scrape> {
  return waitFor(what, async () => {
    const now = await scrape(server);
    return ready(now) ? now : undefined;
  });
}

for (const variant of await storeVariants()) {
  describe(`GET /metrics (${variant.kind})`, { skip: variant.skip }, () => {
    let sink: SmtpSink;
    let server: TestServer;

    before(async () => {
      // later@ is deferred (451), never@ refused (550); everyone else is accepted.
      sink = await SmtpSink.start({
        rules: {
          recipient: (address) => {
            if (address.startsWith("later@")) return { code: 451, message: "4.2.0 try again later" };
            if (address.startsWith("never@")) return { code: 550, message: "5.1.1 no such user" };
            return undefined;
          },
        },
      });
      // A deferred message waits an hour for its retry: it stays in the queue for the rest of the suite.
      server = await startMailroom({
        store: variant.kind,
        env: { MAILROOM_SMTP_URL: sink.url, MAILROOM_RETRY_BASE_MS: HOUR, MAILROOM_RETRY_MAX_MS: HOUR },
      });
    });
    after(async () => {
      await server?.close();
      await sink?.stop();
    });

    test("parses as Prometheus text and moves when messages are sent", async () => {
      const start = await scrape(server);
      assert.equal(start.family("mailroom_messages_accepted_total").type, "COUNTER");
      assert.equal(start.family("mailroom_delivery_latency_seconds").type, "HISTOGRAM");
      assert.equal(start.family("mailroom_queue_depth").type, "GAUGE");
      // prom-client's default metrics, in this server's own registry.
      assert.ok(start.family("nodejs_eventloop_lag_seconds"));
      assert.ok(start.family("process_resident_memory_bytes"));

      const sids: string[] = [];
      for (let i = 0; i < 3; i++) {
        const sent = await sendEmail(server, server.admin, { To: `reader${i}@example.org` });
        assert.equal(sent.status, 200);
        sids.push(sent.json.sid);
      }
      for (const sid of sids) assert.equal((await waitForFinal(server, server.admin, sid)).status, "sent");
      const sent = "mailroom_messages_sent_total";
      const end = await scrapeUntil(
        server,
        "three more sent and an empty queue",
        (now) => now.value(sent) - start.value(sent) === 3 && now.value("mailroom_queue_depth") === 0,
      );
      const delta = (name: string, labels: Record<string, string> = {}) =>
        end.value(name, labels) - start.value(name, labels);
      assert.equal(delta("mailroom_messages_accepted_total"), 3);
      assert.equal(delta("mailroom_messages_failed_total"), 0);
      assert.equal(delta("mailroom_messages_deferred_total"), 0);
      assert.equal(delta("mailroom_smtp_replies_total", { class: "2xx" }), 3);
      const latency = "mailroom_delivery_latency_seconds";
      assert.equal(end.count(latency) - start.count(latency), 3);
      assert.ok(end.sum(latency) > 0);
      assert.equal(end.value("mailroom_queue_oldest_due_age_seconds"), 0);
      // The relay thread's pool: opened for these messages, and kept for the next ones.
      assert.ok(end.value("mailroom_relay_connections_opened_total") >= 1);
      assert.ok(end.value("mailroom_relay_connections_open") >= 1);

      // Requests are timed by route pattern: no series per account SID or message SID.
      const posts = end.count("mailroom_http_request_duration_seconds", {
        method: "POST",
        route: SEND_ROUTE,
        status_code: "200",
      });
      assert.ok(posts >= 3, `${posts} sends timed under the route's pattern`);
      assert.ok(!end.text.includes(server.admin.sid), "no label carries an account SID");
      for (const sid of sids) assert.ok(!end.text.includes(sid), "no label carries a message SID");
      assert.ok(end.count("mailroom_store_call_seconds", { thread: "store" }) > 0);
      // On SQLite the scrape's own store read runs in the reader thread.
      if (variant.kind === "sqlite")
        assert.ok(end.count("mailroom_store_call_seconds", { thread: "reader" }) > 0);
    });

    test("deferred and refused attempts are counted by reply class, and a deferred message stays in the queue", async () => {
      const start = await scrape(server);
      const deferred = await sendEmail(server, server.admin, { To: "later@example.org" });
      const refused = await sendEmail(server, server.admin, { To: "never@example.org" });
      assert.equal((await waitForFinal(server, server.admin, refused.json.sid)).status, "failed");
      const end = await scrapeUntil(
        server,
        "one attempt deferred and one message failed",
        (now) =>
          now.value("mailroom_messages_deferred_total") - start.value("mailroom_messages_deferred_total") ===
            1 &&
          now.value("mailroom_messages_failed_total") - start.value("mailroom_messages_failed_total") === 1,
      );
      const delta = (name: string, labels: Record<string, string> = {}) =>
        end.value(name, labels) - start.value(name, labels);
      assert.equal(delta("mailroom_smtp_replies_total", { class: "4xx" }), 1);
      assert.equal(delta("mailroom_smtp_replies_total", { class: "5xx" }), 1);
      assert.equal(delta("mailroom_messages_sent_total"), 0);
      // The deferred one waits for its retry, an hour away: in the queue, but not overdue.
      assert.equal(end.value("mailroom_queue_depth"), 1, `${deferred.json.sid} is the only one queued`);
      assert.equal(end.value("mailroom_queue_oldest_due_age_seconds"), 0);
    });

    test("the oldest due age grows while a due message is not delivered yet", async () => {
      // The relay holds its answer to DATA: the message stays in the queue, due, while it waits.
      sink.rules.dataDelayMs = 600_000;
      const deferredBefore = (await scrape(server)).value("mailroom_messages_deferred_total");
      await sendEmail(server, server.admin, { To: "slow@example.org" });
      try {
        await waitFor("the relay to hold the message's DATA", () => sink.unanswered === 1);
        const during = await scrapeUntil(
          server,
          "an overdue message in the queue",
          (now) => now.value("mailroom_queue_oldest_due_age_seconds") > 0,
        );
        assert.equal(during.value("mailroom_queue_depth"), 2, "the deferred message and this one");
      } finally {
        sink.rules.dataDelayMs = 0;
        // The relay drops the connection it held: the attempt ends deferred (its retry is an hour away).
        await sink.restart();
      }
      await scrapeUntil(
        server,
        "the held attempt to be recorded as deferred",
        (now) => now.value("mailroom_messages_deferred_total") === deferredBefore + 1,
      );
    });

    test("two processes on one PostgreSQL: counters are each process's own, queue gauges the shared store's", {
      skip: variant.kind === "sqlite" ? "an SQLite file has one server" : false,
    }, async () => {
      const peer = await startPeer(server);
      try {
        const mine = await scrape(server);
        const before = await scrape(peer);
        // The peer accepts and delivers (it captures: no relay); the first server does nothing.
        const sent = await sendEmail(peer, server.admin, { To: "peer@example.org" });
        assert.equal((await waitForFinal(peer, server.admin, sent.json.sid)).status, "sent");
        const after = await scrapeUntil(
          peer,
          "the peer's sent counter",
          (now) =>
            now.value("mailroom_messages_sent_total") === before.value("mailroom_messages_sent_total") + 1,
        );
        assert.equal(
          after.value("mailroom_messages_accepted_total"),
          before.value("mailroom_messages_accepted_total") + 1,
        );
        const unchanged = await scrape(server);
        assert.equal(
          unchanged.value("mailroom_messages_accepted_total"),
          mine.value("mailroom_messages_accepted_total"),
        );
        // Both read the one queue: the deferred message of an earlier test waits there for each of them.
        assert.equal(after.value("mailroom_queue_depth"), unchanged.value("mailroom_queue_depth"));
        assert.ok(after.value("mailroom_queue_depth") >= 1);
      } finally {
        await peer.close();
      }
    });

    test("the webhook backlog is the number of rows in webhook_queue", async () => {
      const before = await scrape(server);
      assert.equal(before.value("mailroom_webhook_backlog"), 0);
      assert.equal(before.value("mailroom_webhook_failures_total", { target: "webhook" }), 0);
      assert.equal(before.value("mailroom_webhook_failures_total", { target: "status_callback" }), 0);
      // A job due in the far future, so that no webhook sender ever takes it.
      const farFuture = Date.UTC(2100, 0, 1);
      for (let i = 0; i < 2; i++) {
        await rawQuery(
          location(server),
          "insert into webhook_queue (sid, account_sid, webhook_sid, event_sid, message_sid, callback_url, attempts, created_at, due_at) values (?, ?, null, null, null, ?, 0, ?, ?)",
          [newSid("EV"), server.admin.sid, "http://127.0.0.1:9/never", Date.now(), farFuture],
        );
      }
      await scrapeUntil(server, "a backlog of two", (now) => now.value("mailroom_webhook_backlog") === 2);
      await rawQuery(location(server), "delete from webhook_queue where due_at = ?", [farFuture]);
      await scrapeUntil(
        server,
        "the backlog back to 0",
        (now) => now.value("mailroom_webhook_backlog") === 0,
      );
      // The webhook sender reports each failed attempt through Mailroom.metrics.
      server.mailroom.metrics.webhookAttemptFailed("status_callback");
      const after = await scrape(server);
      assert.equal(after.value("mailroom_webhook_failures_total", { target: "status_callback" }), 1);
      assert.equal(after.value("mailroom_webhook_failures_total", { target: "webhook" }), 0);
    });
  });
}

describe("GET /metrics with MAILROOM_METRICS_TOKEN", () => {
  const token = "metrics-token-0123456789abcdef";
  let server: TestServer;
  before(async () => {
    server = await startMailroom({ env: { MAILROOM_METRICS_TOKEN: token } });
  });
  after(async () => {
    await server?.close();
  });

  test("no token, a Basic credential or a wrong token get 401 with a code; the right one gets the metrics", async () => {
    const cases: Array<[string, Record<string, string>, number]> = [
      ["no Authorization", {}, 20030],
      [
        "a Basic credential",
        { authorization: `Basic ${Buffer.from(`x:${token}`).toString("base64")}` },
        20030,
      ],
      ["a wrong token", { authorization: `Bearer ${token}x` }, 20031],
      ["a prefix of the token", { authorization: `Bearer ${token.slice(0, 10)}` }, 20031],
    ];
    for (const [what, headers, code] of cases) {
      const response = await request(server, "GET", "/metrics", {
        headers: { ...headers, accept: "application/json" },
      });
      assert.equal(response.status, 401, what);
      assert.equal(response.headers.get("x-mailroom-error-code"), String(code), what);
      assert.equal(response.headers.get("www-authenticate"), 'Bearer realm="mailroom-metrics"', what);
      assert.equal(response.json.code, code, what);
      assert.match(response.json.message, /MAILROOM_METRICS_TOKEN/, what);
      assert.ok(!response.text.includes(token.slice(0, 10)), `${what}: the answer does not quote the token`);
    }
    const ok = await scrape(server, token);
    assert.ok(ok.family("mailroom_messages_accepted_total"));
    // The scheme's name is case-insensitive (RFC 6750).
    const lower = await request(server, "GET", "/metrics", { headers: { authorization: `bearer ${token}` } });
    assert.equal(lower.status, 200);
    assert.match(lower.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  });

  test("an unknown query parameter is refused, not ignored", async () => {
    const response = await request(server, "GET", "/metrics.json?format=json", {
      headers: { authorization: `Bearer ${token}` },
    });
    // /metrics.json is not a route (the .json suffix is Restcomm's, under /restcomm/ only).
    assert.equal(response.status, 404);
    const unknown = await request(server, "GET", "/metrics?format=json", {
      headers: { authorization: `Bearer ${token}`, accept: "application/json" },
    });
    assert.equal(unknown.status, 400);
    assert.equal(unknown.json.code, 20009);
  });

  test("a token too short or with spaces is refused at start, without quoting it", () => {
    for (const bad of ["short", "has spaces in the middle of it"]) {
      assert.throws(
        () => loadConfig({ MAILROOM_METRICS_TOKEN: bad }),
        (error: unknown) =>
          error instanceof ConfigError &&
          error.message.startsWith("MAILROOM_METRICS_TOKEN ") &&
          !error.message.includes(bad),
      );
    }
    assert.equal(loadConfig({ MAILROOM_METRICS_TOKEN: token }).metricsToken, token);
    assert.equal(loadConfig({}).metricsToken, undefined);
  });
});

const [, postgres] = await storeVariants();
describe("GET /metrics while the database is unreachable", {
  skip: postgres?.skip ?? "no PostgreSQL",
}, () => {
  test("answers 200: the store's gauges read NaN, the rest is still there; numbers come back with the database", async () => {
    const schema = await createTestSchema();
    const proxy = await startPostgresProxy(schema.url);
    // The server did not create the schema, so closing it removes only its temp data dir.
    const server = await startMailroom({ databaseUrl: proxy.url });
    try {
      assert.equal((await scrape(server)).value("mailroom_queue_depth"), 0);
      proxy.cut();
      const during = await scrape(server);
      for (const name of [
        "mailroom_queue_depth",
        "mailroom_queue_oldest_due_age_seconds",
        "mailroom_webhook_backlog",
      ]) {
        assert.ok(Number.isNaN(during.value(name)), `${name} is NaN while the store does not answer`);
      }
      assert.equal(during.value("mailroom_messages_accepted_total"), 0);
      assert.ok(during.family("nodejs_eventloop_lag_seconds"));
      proxy.restore();
      await scrapeUntil(server, "the queue depth back", (now) => now.value("mailroom_queue_depth") === 0);
    } finally {
      await server.close();
      await proxy.close();
      await schema.drop();
    }
  });
});
