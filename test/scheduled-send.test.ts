import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { getMessage } from "./helpers/delivery.js";
import {
  API,
  type Credentials,
  request,
  sendEmail,
  startMailroom,
  type TestServer,
} from "./helpers/mailroom.js";
import { openRawDb } from "./helpers/raw-db.js";
import { SmtpSink } from "./helpers/smtp-sink.js";
import { storeVariants } from "./helpers/stores.js";
import { onOneDay } from "./helpers/usage.js";
import { waitFor } from "./helpers/wait.js";
import { type Receiver, startReceiver } from "./helpers/webhooks.js";

// biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary JSON
type Json = any;

const iso = (ms: number) => new Date(ms).toISOString();

/** The first attempt's start and the message's stored send_at, in milliseconds, read from the store. */
async function storedTimes(server: TestServer, sid: string) {
  const db = openRawDb(server);
  try {
    const message = await db
      .selectFrom("email_messages")
      .select(["send_at", "status"])
      .where("sid", "=", sid)
      .executeTakeFirstOrThrow();
    const attempts = await db
      .selectFrom("email_attempts")
      .select(["date_started"])
      .where("message_sid", "=", sid)
      .orderBy("attempt")
      .execute();
    const queued = await db
      .selectFrom("delivery_queue")
      .select(["due_at", "lease_owner"])
      .where("message_sid", "=", sid)
      .executeTakeFirst();
    return {
      sendAt: message.send_at === null ? null : Number(message.send_at),
      status: message.status,
      attemptsStarted: attempts.map((a) => Number(a.date_started)),
      queued: queued && { due_at: Number(queued.due_at), lease_owner: queued.lease_owner },
    };
  } finally {
    await db.destroy();
  }
}

for (const variant of await storeVariants()) {
  describe(`scheduled send, cancel and reschedule (${variant.kind})`, { skip: variant.skip }, () => {
    let sink: SmtpSink;
    let server: TestServer;
    let auth: Credentials;
    let hooks: Receiver;
    let callbacks: Receiver;
    /** When the sink accepted each message, by Message-ID (the server's clock: same process). */
    const arrivedAt = new Map<string, number>();
    const messages = `${API}/Accounts/{sid}/Email/Messages`;
    const path = (suffix = "") => `${messages.replace("{sid}", auth.sid)}${suffix}`;
    const update = (sid: string, form: Record<string, string>) =>
      request(server, "POST", path(`/${sid}.json`), { auth, form });
    const events = async (sid: string): Promise<Json[]> => {
      const response = await request(server, "GET", path(`/${sid}/Events.json`), { auth });
      assert.equal(response.status, 200, response.text);
      return response.json.events;
    };
    const types = async (sid: string) => (await events(sid)).map((e: Json) => e.type);
    const listed = async (status: string): Promise<string[]> => {
      const response = await request(server, "GET", path(`.json?Status=${status}&PageSize=1000`), { auth });
      assert.equal(response.status, 200, response.text);
      return response.json.messages.map((m: Json) => m.sid);
    };
    /** Sends a message that is not scheduled and waits until the sink has it: the worker has looked at the queue since. */
    const sendAndWaitDelivered = async (subject: string) => {
      const sent = await sendEmail(server, auth, { Subject: subject });
      assert.equal(sent.status, 200, sent.text);
      await waitFor(`${subject} delivered`, () => sink.count(sent.json.message_id) === 1);
      return sent.json;
    };

    before(async () => {
      sink = await SmtpSink.start();
      sink.rules = {
        message: (message) => {
          if (message.messageId) arrivedAt.set(message.messageId, Date.now());
          return undefined;
        },
        // A recipient the relay defers: its message waits, queued and unleased, for a retry a minute away.
        recipient: (address) =>
          address.startsWith("defer@") ? { code: 451, message: "4.7.1 Try again later" } : undefined,
      };
      hooks = await startReceiver();
      callbacks = await startReceiver();
      server = await startMailroom({
        store: variant.kind,
        env: { MAILROOM_SMTP_URL: sink.url, MAILROOM_RETRY_BASE_MS: "60000" },
      });
      auth = await server.createAccount("scheduler@example.org", server.admin.sid);
      const hook = await request(server, "POST", `${API}/Accounts/${auth.sid}/Webhooks.json`, {
        auth,
        form: { Url: `${hooks.url}/events`, Events: "email.scheduled,email.canceled" },
      });
      assert.equal(hook.status, 200, hook.text);
    });
    after(async () => {
      await server?.close();
      await sink?.stop();
      await hooks?.close();
      await callbacks?.close();
    });

    test("SendAt a few seconds ahead: scheduled, then delivered at its time and not before", async () => {
      const sendAt = Date.now() + 3000;
      const sent = await sendEmail(server, auth, { Subject: "later", SendAt: iso(sendAt) });
      assert.equal(sent.status, 200, sent.text);
      const accepted = sent.json;
      assert.equal(accepted.status, "scheduled");
      assert.equal(accepted.send_at, iso(sendAt));
      const stored = await storedTimes(server, accepted.sid);
      assert.equal(stored.sendAt, sendAt);
      assert.equal(stored.queued?.due_at, sendAt, "its queue row is due at SendAt");
      assert.equal(stored.queued?.lease_owner, null, "never leased at acceptance");
      const read = await getMessage(server, auth, accepted.sid);
      if (Date.now() < sendAt) {
        assert.equal(read.status, "scheduled");
        assert.ok((await listed("scheduled")).includes(accepted.sid));
        assert.ok(!(await listed("queued")).includes(accepted.sid), "scheduled is not queued");
      }

      const delivered = await waitFor(
        "the scheduled message to be sent",
        async () => {
          const message = await getMessage(server, auth, accepted.sid);
          return message.status === "sent" ? message : undefined;
        },
        60_000,
      );
      assert.equal(delivered.send_at, iso(sendAt), "send_at stays after delivery");
      assert.equal(sink.count(accepted.message_id), 1);
      const arrived = arrivedAt.get(accepted.message_id) as number;
      assert.ok(arrived >= sendAt, `arrived ${arrived - sendAt} ms before SendAt`);
      const after = await storedTimes(server, accepted.sid);
      assert.equal(after.attemptsStarted.length, 1);
      assert.ok(
        (after.attemptsStarted[0] as number) >= sendAt,
        `the attempt began ${sendAt - (after.attemptsStarted[0] as number)} ms before SendAt`,
      );
      assert.equal(after.queued, undefined);
      assert.deepEqual(await types(accepted.sid), ["email.accepted", "email.scheduled", "email.sent"]);
      const scheduled = (await events(accepted.sid))[1];
      assert.equal(new Date(scheduled.retry_at).getTime(), Math.floor(sendAt / 1000) * 1000);
    });

    test("cancel: canceled, never delivered, its event and StatusCallback; a repeat answers the same", async () => {
      const sendAt = Date.now() + 2000;
      const sent = await sendEmail(server, auth, {
        Subject: "to cancel",
        SendAt: iso(sendAt),
        StatusCallback: `${callbacks.url}/cb`,
      });
      assert.equal(sent.status, 200, sent.text);
      const { sid, message_id: messageId } = sent.json;
      const canceled = await update(sid, { Status: "canceled" });
      assert.equal(canceled.status, 200, canceled.text);
      assert.equal(canceled.json.status, "canceled");
      assert.equal(canceled.json.send_at, iso(sendAt));
      const stored = await storedTimes(server, sid);
      assert.equal(stored.status, "canceled");
      assert.equal(stored.queued, undefined, "its queue row is gone");

      // Past SendAt, and past a later message's delivery (the worker has looked at the queue since).
      await waitFor("SendAt to pass", () => Date.now() > sendAt + 500, 10_000);
      await sendAndWaitDelivered("after the canceled one");
      assert.equal(sink.count(messageId), 0, "a canceled message is never delivered");
      assert.equal((await getMessage(server, auth, sid)).status, "canceled");
      assert.deepEqual(await types(sid), ["email.accepted", "email.scheduled", "email.canceled"]);
      assert.ok((await listed("canceled")).includes(sid));
      assert.ok(!(await listed("scheduled")).includes(sid));

      const callback = await waitFor("the StatusCallback", () =>
        callbacks.received.find((r) => new URLSearchParams(r.body).get("MessageSid") === sid),
      );
      assert.equal(new URLSearchParams(callback.body).get("MessageStatus"), "canceled");
      const hookTypes = await waitFor("both webhook events", () => {
        const mine = hooks.received
          .map((r) => JSON.parse(r.body) as Json)
          .filter((body) => body.data.message_sid === sid)
          .map((body) => body.type);
        return mine.length >= 2 ? mine : undefined;
      });
      assert.deepEqual(hookTypes, ["email.scheduled", "email.canceled"]);

      const again = await update(sid, { Status: "canceled" });
      assert.equal(again.status, 200, again.text);
      assert.equal(again.json.status, "canceled");
      assert.deepEqual(await types(sid), ["email.accepted", "email.scheduled", "email.canceled"]);
      const moved = await update(sid, { SendAt: iso(Date.now() + 60_000) });
      assert.equal(moved.status, 409, moved.text);
      assert.equal(moved.json.code, 15221);
    });

    test("cancel after sending: 409 (final); while being sent: 409 (being sent)", async () => {
      const sentMessage = await sendAndWaitDelivered("already sent");
      await waitFor(
        "sent status",
        async () => (await getMessage(server, auth, sentMessage.sid)).status === "sent",
      );
      const late = await update(sentMessage.sid, { Status: "canceled" });
      assert.equal(late.status, 409, late.text);
      assert.equal(late.json.code, 15221);
      assert.match(late.json.message, /sent, which is final/);

      sink.rules.dataDelayMs = 3000;
      try {
        const slow = await sendEmail(server, auth, { Subject: "slow relay" });
        assert.equal(slow.status, 200, slow.text);
        await waitFor("the relay to hold the message", () => sink.unanswered > 0);
        const busy = await update(slow.json.sid, { Status: "canceled" });
        assert.equal(busy.status, 409, busy.text);
        assert.equal(busy.json.code, 15220);
        await waitFor("the slow message delivered", () => sink.count(slow.json.message_id) === 1);
      } finally {
        sink.rules.dataDelayMs = 0;
      }
    });

    test("a queued message no worker holds (waiting for its retry) can be canceled, not moved", async () => {
      const sent = await sendEmail(server, auth, { To: "defer@example.com", Subject: "deferred" });
      assert.equal(sent.status, 200, sent.text);
      const { sid } = sent.json;
      const queued = await waitFor("the deferral", async () => {
        const message = await getMessage(server, auth, sid);
        return message.status === "queued" && message.num_attempts === 1 ? message : undefined;
      });
      assert.ok(queued.next_attempt, "a retry is due later");
      const moved = await update(sid, { SendAt: iso(Date.now() + 60_000) });
      assert.equal(moved.status, 409, moved.text);
      assert.equal(moved.json.code, 15222);
      const canceled = await update(sid, { Status: "canceled" });
      assert.equal(canceled.status, 200, canceled.text);
      assert.equal(canceled.json.status, "canceled");
      assert.equal((await storedTimes(server, sid)).queued, undefined);
      assert.deepEqual(await types(sid), ["email.accepted", "email.deferred", "email.canceled"]);
    });

    test("reschedule: SendAt alone moves a scheduled message (JSON body too)", async () => {
      const first = Date.now() + 120_000;
      const sent = await sendEmail(server, auth, { Subject: "moved", SendAt: iso(first) });
      assert.equal(sent.status, 200, sent.text);
      const { sid, message_id: messageId } = sent.json;
      const sendAt = Date.now() + 2000;
      const moved = await request(server, "POST", path(`/${sid}.json`), {
        auth,
        json: { SendAt: iso(sendAt) },
      });
      assert.equal(moved.status, 200, moved.text);
      assert.equal(moved.json.status, "scheduled");
      assert.equal(moved.json.send_at, iso(sendAt));
      assert.equal((await storedTimes(server, sid)).queued?.due_at, sendAt);
      await waitFor("the moved message delivered", () => sink.count(messageId) === 1, 60_000);
      await waitFor("its sent status", async () => (await getMessage(server, auth, sid)).status === "sent");
      const after = await storedTimes(server, sid);
      assert.ok((after.attemptsStarted[0] as number) >= sendAt, "not before the new SendAt");
      assert.ok((arrivedAt.get(messageId) as number) >= sendAt);
      assert.deepEqual(await types(sid), [
        "email.accepted",
        "email.scheduled",
        "email.scheduled",
        "email.sent",
      ]);
      const rescheduled = (await events(sid))[2];
      assert.equal(new Date(rescheduled.retry_at).getTime(), Math.floor(sendAt / 1000) * 1000);
    });

    test("usage: a canceled message counts as accepted, never as sent", async () => {
      // An account of its own, so that its counts are this test's.
      const counted = await server.createAccount("usage-scheduler@example.org", server.admin.sid);
      const scheduled = await sendEmail(server, counted, { SendAt: iso(Date.now() + 60_000) });
      assert.equal(scheduled.status, 200, scheduled.text);
      const canceled = await request(
        server,
        "POST",
        `${API}/Accounts/${counted.sid}/Email/Messages/${scheduled.json.sid}.json`,
        {
          auth: counted,
          form: { Status: "canceled" },
        },
      );
      assert.equal(canceled.status, 200, canceled.text);
      const sent = await sendEmail(server, counted, { Subject: "counted as sent" });
      assert.equal(sent.status, 200, sent.text);
      await waitFor(
        "the plain message sent",
        async () => (await getMessage(server, counted, sent.json.sid)).status === "sent",
      );
      await onOneDay(async () => {
        const today = await request(
          server,
          "GET",
          `${API}/Accounts/${counted.sid}/Usage/Records/Today.json`,
          {
            auth: counted,
          },
        );
        assert.equal(today.status, 200, today.text);
        const counts = Object.fromEntries((today.json as Json[]).map((r) => [r.category, r.count]));
        assert.equal(counts.email, "2");
        assert.equal(counts["email-sent"], "1");
        assert.equal(counts["email-failed"], "0");
      });
    });

    test("bad SendAt values and bad updates are 400s with their codes", async () => {
      const now = Date.now();
      const cases: Array<[string, number]> = [
        ["2026-05-01T09:30:00", 15200],
        ["tomorrow", 15200],
        ["2031-02-30T10:00:00Z", 15200],
        ["2031-01-01T24:00:00Z", 15200],
        [iso(now - 10 * 60_000), 15201],
        [iso(now + 31 * 86_400_000), 15202],
      ];
      for (const [value, code] of cases) {
        const response = await sendEmail(server, auth, { SendAt: value });
        assert.equal(response.status, 400, `${value}: ${response.text}`);
        assert.equal(response.json.code, code, value);
      }
      // The same instant written with an offset east and west of UTC (and without a colon).
      const at = now + 2 * 3_600_000;
      const shifted = (minutes: number, sign: string, colon: string) =>
        `${iso(at + minutes * 60_000).slice(0, 23)}${sign}${String(Math.floor(Math.abs(minutes) / 60)).padStart(2, "0")}${colon}${String(Math.abs(minutes) % 60).padStart(2, "0")}`;
      for (const written of [shifted(330, "+", ":"), shifted(-480, "-", ""), shifted(0, "+", ":")]) {
        const response = await sendEmail(server, auth, { SendAt: written, Subject: "offset" });
        assert.equal(response.status, 200, `${written}: ${response.text}`);
        assert.equal(response.json.send_at, iso(at), written);
        assert.equal((await update(response.json.sid, { Status: "canceled" })).status, 200);
      }
      const offset = await sendEmail(server, auth, {
        SendAt: iso(now + 60_000).replace("Z", "+00:00"),
        Subject: "offset",
      });
      assert.equal(offset.status, 200, offset.text);
      const sid = offset.json.sid;
      const bad: Array<[Record<string, string>, number]> = [
        [{}, 15210],
        [{ Status: "sent" }, 15210],
        [{ Status: "canceled", SendAt: iso(now + 120_000) }, 15210],
        [{ SendAt: "soon" }, 15200],
        [{ Priority: "high" }, 20009],
      ];
      for (const [form, code] of bad) {
        const response = await update(sid, form);
        assert.equal(response.status, 400, `${JSON.stringify(form)}: ${response.text}`);
        assert.equal(response.json.code, code, JSON.stringify(form));
      }
      const missing = await update("EM00000000000000000000000000000000", { Status: "canceled" });
      assert.equal(missing.status, 404, missing.text);
      assert.equal((await update(sid, { Status: "canceled" })).status, 200);
    });
  });

  describe(`scheduled send across a restart (${variant.kind})`, { skip: variant.skip }, () => {
    test("a message scheduled before a restart is delivered at its time after it", async () => {
      const sink = await SmtpSink.start();
      const env = { MAILROOM_SMTP_URL: sink.url };
      const first = await startMailroom({ store: variant.kind, env, keepData: true });
      let firstOpen = true;
      let second: TestServer | undefined;
      try {
        const auth = await first.createAccount("restart@example.org", first.admin.sid);
        const sendAt = Date.now() + 3000;
        const sent = await sendEmail(first, auth, { Subject: "across a restart", SendAt: iso(sendAt) });
        assert.equal(sent.status, 200, sent.text);
        await first.close();
        firstOpen = false;
        assert.equal(sink.count(sent.json.message_id), 0);
        second = await startMailroom({
          dataDir: first.dataDir,
          databaseUrl: first.databaseUrl,
          admin: first.admin,
          env,
          keepData: true,
        });
        const server = second;
        await waitFor("delivery after the restart", () => sink.count(sent.json.message_id) === 1, 60_000);
        const message = await waitFor("sent status", async () => {
          const read = await getMessage(server, auth, sent.json.sid);
          return read.status === "sent" ? read : undefined;
        });
        assert.equal(message.send_at, iso(sendAt));
        const times = await storedTimes(server, sent.json.sid);
        assert.ok((times.attemptsStarted[0] as number) >= sendAt, "not before SendAt");
      } finally {
        if (firstOpen) await first.close();
        await second?.close();
        await first.removeData();
        await sink.stop();
      }
    });
  });

  describe(`the worker waits for a scheduled message (${variant.kind})`, { skip: variant.skip }, () => {
    test("it sleeps until SendAt, not until its poll interval, and does not poll meanwhile", async () => {
      const sink = await SmtpSink.start();
      // Longer than the test: a delivery means the worker woke for SendAt.
      const server = await startMailroom({
        store: variant.kind,
        env: { MAILROOM_SMTP_URL: sink.url, MAILROOM_POLL_INTERVAL_MS: "600000" },
      });
      try {
        const { store } = server.mailroom;
        let claims = 0;
        const claimDue = store.claimDue.bind(store);
        store.claimDue = (...args) => {
          claims++;
          return claimDue(...args);
        };
        const sendAt = Date.now() + 2000;
        const sent = await sendEmail(server, server.admin, { Subject: "wake me", SendAt: iso(sendAt) });
        assert.equal(sent.status, 200, sent.text);
        await waitFor("the delivery at SendAt", () => sink.count(sent.json.message_id) === 1, 30_000);
        const times = await waitFor("the attempt record", async () => {
          const read = await storedTimes(server, sent.json.sid);
          return read.attemptsStarted.length > 0 ? read : undefined;
        });
        assert.ok((times.attemptsStarted[0] as number) >= sendAt);
        // One look when it was accepted (nothing due yet), one at SendAt: a few, not a loop.
        assert.ok(claims <= 6, `${claims} claims while waiting for one scheduled message`);
      } finally {
        await server.close();
        await sink.stop();
      }
    });
  });

  describe(`cancel against claims by two processes (${variant.kind})`, {
    skip: variant.skip || (variant.kind === "sqlite" ? "one process per SQLite file" : false),
  }, () => {
    test("each message is either canceled and never delivered, or delivered once and not canceled", async () => {
      const sink = await SmtpSink.start();
      const env = { MAILROOM_SMTP_URL: sink.url };
      const server = await startMailroom({ store: variant.kind, env });
      const peer = await startMailroom({
        databaseUrl: server.databaseUrl,
        dataDir: server.dataDir,
        admin: server.admin,
        keepData: true,
        env,
      });
      try {
        const auth = server.admin;
        const sendAt = Date.now() + 3000;
        const sent = await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            sendEmail(server, auth, { Subject: `race ${i}`, SendAt: iso(sendAt) }),
          ),
        );
        for (const response of sent) assert.equal(response.status, 200, response.text);
        // Cancels fired one by one from shortly before SendAt to shortly after, while both processes'
        // workers claim the messages as they come due: some cancels win, some claims do.
        const pending: Array<ReturnType<typeof request>> = [];
        for (const [i, response] of sent.entries()) {
          await waitFor("the next cancel's moment", () => Date.now() >= sendAt - 300 + i * 30, 10_000);
          pending.push(
            request(server, "POST", `${API}/Accounts/${auth.sid}/Email/Messages/${response.json.sid}.json`, {
              auth,
              form: { Status: "canceled" },
            }),
          );
        }
        const answers = await Promise.all(pending);
        for (const [i, response] of sent.entries()) {
          const answer = answers[i] as Awaited<(typeof answers)[number]>;
          const { sid, message_id: messageId } = response.json;
          const final = await waitFor(`message ${sid} final`, async () => {
            const read = await getMessage(server, auth, sid);
            return read.status === "sent" || read.status === "canceled" ? read : undefined;
          });
          if (final.status === "canceled") {
            assert.equal(answer.status, 200, answer.text);
            assert.equal(sink.count(messageId), 0, `${sid} was canceled and delivered`);
          } else {
            assert.equal(answer.status, 409, answer.text);
            assert.ok([15220, 15221].includes(answer.json.code), answer.text);
            assert.equal(sink.count(messageId), 1, `${sid} was sent ${sink.count(messageId)} times`);
          }
        }
        // A message canceled is never picked up later either.
        await sendAndWait(server, auth, sink);
        for (const [i, response] of sent.entries()) {
          if ((answers[i] as { status: number }).status === 200) {
            assert.equal(sink.count(response.json.message_id), 0);
          }
        }
      } finally {
        await peer.close();
        await server.close();
        await sink.stop();
      }
    });
  });
}

async function sendAndWait(server: TestServer, auth: Credentials, sink: SmtpSink): Promise<void> {
  const sent = await sendEmail(server, auth, { Subject: "after the race" });
  assert.equal(sent.status, 200, sent.text);
  await waitFor("a later message delivered", () => sink.count(sent.json.message_id) === 1);
}
