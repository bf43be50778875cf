import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { newSid } from "../src/domain/ids.js";
import { MAX_REPLAY_EVENTS } from "../src/services/webhooks.js";
import type { EmailEventRow, WebhookDeliveryRow } from "../src/store/types.js";
import { waitForFinal } from "./helpers/delivery.js";
import {
  API,
  type Credentials,
  request,
  sendEmail,
  startMailroom,
  type TestServer,
} from "./helpers/mailroom.js";
import { deliveryRow, eventRow, openRawDb } from "./helpers/raw-db.js";
import { storeVariants } from "./helpers/stores.js";
import { waitFor } from "./helpers/wait.js";
import { type Receiver, startReceiver, verifyDelivery } from "./helpers/webhooks.js";

/** 2024-03-01 00:00 UTC; the events below fall on that day, one outside it. */
const DAY = Date.UTC(2024, 2, 1);

/** Sends one email (captured: no relay) and waits until it is sent: its events are real. */
async function sentMessage(server: TestServer, account: Credentials): Promise<string> {
  const sent = await sendEmail(server, account);
  assert.equal(sent.status, 200, sent.text);
  await waitForFinal(server, account, sent.json.sid);
  return sent.json.sid;
}

for (const variant of await storeVariants()) {
  describe(`webhook deliveries and replay (${variant.kind})`, { skip: variant.skip }, () => {
    let server: TestServer;
    /** Never answers: a job handed to it stays in the queue, leased, for as long as these tests look. */
    let receiver: Receiver;
    let rita: Credentials;
    let other: Credentials;
    let hook: string;
    let otherHook: string;
    let events: EmailEventRow[];
    let deliveries: WebhookDeliveryRow[];
    const startedAt = new Date().toISOString();
    const base = () => `${API}/Accounts/${rita.sid}/Webhooks/${hook}`;
    const post = (path: string, form?: Record<string, string>) =>
      request(server, "POST", path, { auth: rita, form });
    const jobs = async (webhookSid: string) => {
      const db = openRawDb(server);
      try {
        return await db
          .selectFrom("webhook_queue")
          .selectAll()
          .where("webhook_sid", "=", webhookSid)
          .orderBy("sid")
          .execute();
      } finally {
        await db.destroy();
      }
    };
    const clearJobs = async () => {
      const db = openRawDb(server);
      try {
        await db.deleteFrom("webhook_queue").execute();
      } finally {
        await db.destroy();
      }
    };

    before(async () => {
      receiver = await startReceiver(() => "hang");
      server = await startMailroom({
        store: variant.kind,
        env: { MAILROOM_WEBHOOK_ALLOW_PRIVATE: "1", MAILROOM_WEBHOOK_TIMEOUT_MS: "60000" },
      });
      rita = await server.createAccount("rita@example.org", server.admin.sid);
      other = await server.createAccount("otto@example.org", server.admin.sid);
      const create = async (account: Credentials, form: Record<string, string>) => {
        const created = await request(server, "POST", `${API}/Accounts/${account.sid}/Webhooks.json`, {
          auth: account,
          form: { Url: `${receiver.url}/hook`, ...form },
        });
        assert.equal(created.status, 200, created.text);
        return created.json.sid as string;
      };
      // Real messages, sent before the webhooks exist: no delivery of their own events is queued.
      const m1 = await sentMessage(server, rita);
      const m2 = await sentMessage(server, rita);
      hook = await create(rita, { Events: "email.sent,email.failed" });
      otherHook = await create(other, {});
      events = [
        eventRow(rita.sid, m1, DAY + 1000),
        eventRow(rita.sid, m1, DAY + 2000, {
          type: "email.sent",
          recipient: "a@example.com",
          smtp_code: 250,
        }),
        eventRow(rita.sid, m2, DAY + 3000),
        eventRow(rita.sid, m2, DAY + 4000, {
          type: "email.failed",
          recipient: "b@example.com",
          error_code: 13101,
        }),
        eventRow(rita.sid, m2, DAY + 5000, {
          type: "email.sent",
          recipient: "c@example.com",
          smtp_code: 250,
        }),
        // The next day: outside the range replayed below.
        eventRow(rita.sid, m2, DAY + 86_400_000 + 1, { type: "email.sent", recipient: "d@example.com" }),
      ];
      deliveries = [
        deliveryRow(events[1] as EmailEventRow, hook, DAY + 2100, {
          outcome: "retrying",
          status_code: 503,
          error: "the receiver answered 503",
          response_body: "busy",
        }),
        deliveryRow(events[1] as EmailEventRow, hook, DAY + 7100, { attempt: 2 }),
        deliveryRow(events[3] as EmailEventRow, hook, DAY + 4100, { status_code: null, outcome: "failed" }),
      ];
      const db = openRawDb(server);
      try {
        await db.insertInto("email_events").values(events).execute();
        // Another account's event on the same day: never replayed to rita's webhook.
        await db
          .insertInto("email_events")
          .values(eventRow(other.sid, m1, DAY + 1500, { type: "email.sent" }))
          .execute();
        await db.insertInto("webhook_deliveries").values(deliveries).execute();
      } finally {
        await db.destroy();
      }
    });
    after(async () => {
      // The receiver first: requests it holds fail at once, and the server stops without waiting on them.
      await receiver?.close();
      await server?.close();
    });

    test("a webhook's deliveries, newest first, and one by its SID", async () => {
      const listed = await request(server, "GET", `${base()}/Deliveries.json`, { auth: rita });
      assert.equal(listed.status, 200, listed.text);
      assert.equal(listed.json.total, 3);
      assert.deepEqual(
        listed.json.deliveries.map((d: { sid: string }) => d.sid),
        [deliveries[1]?.sid, deliveries[2]?.sid, deliveries[0]?.sid],
      );
      const first = deliveries[0] as WebhookDeliveryRow;
      const one = await request(server, "GET", `${base()}/Deliveries/${first.sid}.json`, { auth: rita });
      assert.equal(one.status, 200);
      assert.deepEqual(one.json, {
        sid: first.sid,
        webhook_sid: hook,
        event_sid: first.event_sid,
        event_type: "email.sent",
        message_sid: first.message_sid,
        attempt: 1,
        date_created: "Fri, 1 Mar 2024 00:00:02 +0000",
        status_code: 503,
        latency_ms: 12,
        outcome: "retrying",
        error: "the receiver answered 503",
        response_body: "busy",
        uri: `${base()}/Deliveries/${first.sid}.json`,
      });
      const paged = await request(server, "GET", `${base()}/Deliveries.json?PageSize=2&Page=1`, {
        auth: rita,
      });
      assert.deepEqual(
        paged.json.deliveries.map((d: { sid: string }) => d.sid),
        [deliveries[0]?.sid],
      );
      const elsewhere = await request(
        server,
        "GET",
        `${API}/Accounts/${other.sid}/Webhooks/${otherHook}/Deliveries/${first.sid}.json`,
        { auth: other },
      );
      assert.equal(elsewhere.status, 404);
      assert.equal(elsewhere.json.code, 14010);
      const missing = await request(server, "GET", `${base()}/Deliveries/${newSid("DL")}.json`, {
        auth: rita,
      });
      assert.equal(missing.json.code, 14010);
    });

    test("replaying a delivery queues its event to the webhook again, due now, as a fresh job", async () => {
      await clearJobs();
      const first = deliveries[2] as WebhookDeliveryRow;
      const before = Date.now();
      const replayed = await post(`${base()}/Deliveries/${first.sid}/Replay.json`);
      const afterwards = Date.now();
      assert.equal(replayed.status, 200, replayed.text);
      assert.deepEqual(replayed.json, { webhook_sid: hook, event_sid: first.event_sid, queued: 1 });
      const queued = await jobs(hook);
      assert.equal(queued.length, 1);
      const job = queued[0];
      assert.match(job?.sid ?? "", /^RP[0-9a-f]{32}$/);
      assert.equal(job?.account_sid, rita.sid);
      assert.equal(job?.event_sid, first.event_sid);
      assert.equal(job?.message_sid, first.message_sid);
      assert.equal(job?.callback_url, null);
      // Queued due now (the sender may already hold it: the receiver never answers, so nothing else moves).
      assert.equal(Number(job?.attempts), 0);
      assert.ok(Number(job?.created_at) >= before && Number(job?.created_at) <= afterwards);
      assert.ok(Number(job?.due_at) >= before && Number(job?.due_at) <= afterwards);
      const unknown = await post(`${base()}/Deliveries/${first.sid}/Replay.json`, { Force: "true" });
      assert.equal(unknown.json.code, 20009);
      const foreign = await request(
        server,
        "POST",
        `${API}/Accounts/${other.sid}/Webhooks/${otherHook}/Deliveries/${first.sid}/Replay.json`,
        { auth: other },
      );
      assert.equal(foreign.status, 404);
    });

    test("replaying a time range queues the webhook's types of that range, oldest first, and says how many", async () => {
      await clearJobs();
      const replayed = await post(`${base()}/Replay.json`, {
        StartTime: "2024-03-01",
        EndTime: "2024-03-01",
      });
      assert.equal(replayed.status, 200, replayed.text);
      assert.deepEqual(replayed.json, {
        webhook_sid: hook,
        start_time: "2024-03-01T00:00:00.000Z",
        end_time: "2024-03-02T00:00:00.000Z",
        types: "email.sent,email.failed",
        queued: 3,
      });
      const queued = await jobs(hook);
      assert.deepEqual(
        queued.map((job) => job.event_sid),
        [events[1]?.sid, events[3]?.sid, events[4]?.sid],
        "the subscribed types of that day, in the order they happened",
      );
      assert.ok(queued.every((job) => job.sid.startsWith("RP") && Number(job.attempts) === 0));

      await clearJobs();
      const failedOnly = await post(`${base()}/Replay.json`, {
        StartTime: "2024-03-01T00:00:00Z",
        EndTime: "2024-03-03",
        Type: "email.failed,email.accepted",
      });
      assert.equal(failedOnly.json.queued, 1, "accepted is not among the webhook's types");
      assert.equal(failedOnly.json.types, "email.failed");
      assert.deepEqual(
        (await jobs(hook)).map((job) => job.event_sid),
        [events[3]?.sid],
      );
      const none = await post(`${base()}/Replay.json`, { StartTime: "2023-01-01", EndTime: "2023-12-31" });
      assert.equal(none.json.queued, 0);
    });

    test("a replay's range and types are checked; a disabled webhook is not replayed to", async () => {
      const noEnd = await post(`${base()}/Replay.json`, { StartTime: "2024-03-01" });
      assert.equal(noEnd.status, 400);
      assert.equal(noEnd.json.code, 14011);
      assert.match(noEnd.json.message, /EndTime/);
      const backwards = await post(`${base()}/Replay.json`, {
        StartTime: "2024-03-02",
        EndTime: "2024-03-01",
      });
      assert.equal(backwards.json.code, 14011);
      const notADate = await post(`${base()}/Replay.json`, { StartTime: "March", EndTime: "2024-03-01" });
      assert.equal(notADate.json.code, 14011);
      const type = await post(`${base()}/Replay.json`, {
        StartTime: "2024-03-01",
        EndTime: "2024-03-01",
        Type: "email.bounce",
      });
      assert.equal(type.json.code, 14003);
      assert.match(type.json.message, /"email\.bounce"/);

      await post(`${base()}.json`, { Enabled: "false" });
      try {
        const disabled = await post(`${base()}/Replay.json`, {
          StartTime: "2024-03-01",
          EndTime: "2024-03-01",
        });
        assert.equal(disabled.status, 409);
        assert.equal(disabled.json.code, 14013);
        const one = await post(`${base()}/Deliveries/${deliveries[0]?.sid}/Replay.json`);
        assert.equal(one.json.code, 14013);
      } finally {
        await post(`${base()}.json`, { Enabled: "true" });
      }
    });

    test("replayed events reach the receiver signed with the webhook's secret, with the event's SID as webhook-id", async () => {
      const answering = await startReceiver(() => 204);
      try {
        const created = await request(server, "POST", `${API}/Accounts/${rita.sid}/Webhooks.json`, {
          auth: rita,
          form: { Url: `${answering.url}/all` },
        });
        assert.equal(created.status, 200, created.text);
        const { sid, secret } = created.json;
        const path = `${API}/Accounts/${rita.sid}/Webhooks/${sid}`;
        // The real events of this test's two messages (accepted and sent, each), not the 2024 ones.
        const real = await request(
          server,
          "GET",
          `${API}/Accounts/${rita.sid}/Events.json?StartTime=${startedAt}`,
          {
            auth: rita,
          },
        );
        assert.equal(real.json.total, 4);
        const replayed = await post(`${path}/Replay.json`, {
          StartTime: startedAt,
          EndTime: new Date().toISOString(),
        });
        assert.equal(replayed.json.queued, 4, replayed.text);
        await waitFor("the replayed events at the receiver", () => answering.received.length >= 4);
        const bodies = answering.received.map((received) => verifyDelivery(secret, received));
        assert.deepEqual(
          answering.received.map((received) => received.headers["webhook-id"]).sort(),
          real.json.events.map((e: { sid: string }) => e.sid).sort(),
        );
        assert.deepEqual(bodies.map((b) => b.type).sort(), [
          "email.accepted",
          "email.accepted",
          "email.sent",
          "email.sent",
        ]);

        // The sender logged each delivery; replaying one sends that event once more.
        const log = await waitFor("the delivery log", async () => {
          const listed = await request(server, "GET", `${path}/Deliveries.json`, { auth: rita });
          return listed.json.total >= 4 ? listed.json.deliveries : undefined;
        });
        const again = log[0];
        assert.equal(again.outcome, "delivered");
        const one = await post(`${path}/Deliveries/${again.sid}/Replay.json`);
        assert.equal(one.json.event_sid, again.event_sid);
        await waitFor("the replayed delivery", () => answering.received.length >= 5);
        const fifth = answering.received[4];
        assert.equal(fifth?.headers["webhook-id"], again.event_sid);
        assert.equal(
          verifyDelivery(secret, fifth as (typeof answering.received)[number]).type,
          again.event_type,
        );
      } finally {
        await answering.close();
      }
    });

    test(`a range of more than ${MAX_REPLAY_EVENTS} events is refused, and nothing is queued`, async () => {
      const busy = await server.createAccount("busy@example.org", server.admin.sid);
      // Sent before the webhook exists, so none of its own events is queued to it.
      const message = await sentMessage(server, busy);
      const created = await request(server, "POST", `${API}/Accounts/${busy.sid}/Webhooks.json`, {
        auth: busy,
        form: { Url: `${receiver.url}/busy` },
      });
      const busyHook = created.json.sid as string;
      const rows = Array.from({ length: MAX_REPLAY_EVENTS + 1 }, (_, i) =>
        eventRow(busy.sid, message, DAY + i),
      );
      const db = openRawDb(server);
      try {
        await db.transaction().execute(async (trx) => {
          for (let i = 0; i < rows.length; i += 500) {
            await trx
              .insertInto("email_events")
              .values(rows.slice(i, i + 500))
              .execute();
          }
        });
      } finally {
        await db.destroy();
      }
      const path = `${API}/Accounts/${busy.sid}/Webhooks/${busyHook}/Replay.json`;
      const refused = await request(server, "POST", path, {
        auth: busy,
        form: { StartTime: "2024-03-01", EndTime: "2024-03-01" },
      });
      assert.equal(refused.status, 400);
      assert.equal(refused.json.code, 14012);
      assert.match(refused.json.message, /10000 events/);
      assert.deepEqual(await jobs(busyHook), []);
      // One fewer fits.
      const fits = await request(server, "POST", path, {
        auth: busy,
        form: { StartTime: "2024-03-01", EndTime: "2024-03-01T00:00:09.999Z" },
      });
      assert.equal(fits.status, 200, fits.text);
      assert.equal(fits.json.queued, MAX_REPLAY_EVENTS);
      assert.equal((await jobs(busyHook)).length, MAX_REPLAY_EVENTS);
      await clearJobs();
    });
  });
}
