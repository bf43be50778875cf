import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { newSid } from "../src/domain/ids.js";
import type { EmailEventRow } from "../src/store/types.js";
import { FAST_RETRIES, waitForFinal } from "./helpers/delivery.js";
import {
  API,
  type Credentials,
  request,
  sendEmail,
  startMailroom,
  type TestServer,
} from "./helpers/mailroom.js";
import { eventRow, openRawDb } from "./helpers/raw-db.js";
import { SmtpSink } from "./helpers/smtp-sink.js";
import { storeVariants } from "./helpers/stores.js";

/** 2024-01-15 10:00:00 UTC: the events below happen within the next two minutes. */
const T = Date.UTC(2024, 0, 15, 10, 0, 0);

for (const variant of await storeVariants()) {
  describe(`events lists (${variant.kind})`, { skip: variant.skip }, () => {
    let server: TestServer;
    let evan: Credentials;
    let other: Credentials;
    const m1 = newSid("EM", T);
    const m2 = newSid("EM", T + 2000);
    let events: EmailEventRow[];
    const list = (query = "", account = evan) =>
      request(server, "GET", `${API}/Accounts/${account.sid}/Events.json${query}`, { auth: account });
    const sids = (response: { json: { events: Array<{ sid: string }> } }) =>
      response.json.events.map((e) => e.sid);

    before(async () => {
      server = await startMailroom({ store: variant.kind });
      evan = await server.createAccount("evan@example.org", server.admin.sid);
      other = await server.createAccount("other@example.org", server.admin.sid);
      events = [
        eventRow(evan.sid, m1, T),
        eventRow(evan.sid, m1, T + 1000, {
          type: "email.sent",
          recipient: "a@example.com",
          smtp_code: 250,
          response: "250 2.0.0 Ok: queued",
        }),
        eventRow(evan.sid, m2, T + 2000),
        eventRow(evan.sid, m2, T + 3000, {
          type: "email.deferred",
          recipient: "b@example.com",
          smtp_code: 451,
          response: "451 4.7.1 Try again later",
          error_code: 13103,
          error_message: "The relay deferred the message: 451 4.7.1 Try again later",
          retry_at: T + 63_000,
        }),
        eventRow(evan.sid, m2, T + 70_000, {
          type: "email.failed",
          recipient: "b@example.com",
          error_code: 13106,
          error_message: "Gave up after 2 attempts",
        }),
      ];
      const db = openRawDb(server);
      try {
        await db.insertInto("email_events").values(events).execute();
        // Another account's event in the same minutes, for the same message SID even: never shown to evan.
        await db
          .insertInto("email_events")
          .values(eventRow(other.sid, m1, T + 500))
          .execute();
      } finally {
        await db.destroy();
      }
    });
    after(async () => {
      await server?.close();
    });

    test("an account's events, newest first, with each event's fields", async () => {
      const all = await list();
      assert.equal(all.status, 200, all.text);
      assert.equal(all.json.total, 5);
      assert.deepEqual(sids(all), events.map((e) => e.sid).reverse());
      const deferred = all.json.events.find((e: { type: string }) => e.type === "email.deferred");
      assert.deepEqual(deferred, {
        sid: events[3]?.sid,
        type: "email.deferred",
        date_created: "Mon, 15 Jan 2024 10:00:03 +0000",
        message_sid: m2,
        account_sid: evan.sid,
        recipient: "b@example.com",
        smtp_code: 451,
        response: "451 4.7.1 Try again later",
        error_code: 13103,
        error_message: "The relay deferred the message: 451 4.7.1 Try again later",
        retry_at: "Mon, 15 Jan 2024 10:01:03 +0000",
        uri: `${API}/Accounts/${evan.sid}/Events/${events[3]?.sid}.json`,
      });
      const accepted = all.json.events.find((e: { sid: string }) => e.sid === events[0]?.sid);
      assert.deepEqual(Object.keys(accepted).sort(), [
        "account_sid",
        "date_created",
        "message_sid",
        "sid",
        "type",
        "uri",
      ]);
    });

    test("filters: Type (one or several), StartTime and EndTime, MessageSid; paging keeps them", async () => {
      assert.deepEqual(sids(await list("?Type=email.sent")), [events[1]?.sid]);
      assert.deepEqual(sids(await list("?Type=email.accepted,email.failed")), [
        events[4]?.sid,
        events[2]?.sid,
        events[0]?.sid,
      ]);
      assert.equal((await list("?StartTime=2024-01-15T10:00:02Z")).json.total, 3);
      assert.equal((await list("?StartTime=2024-01-15&EndTime=2024-01-15")).json.total, 5);
      assert.equal((await list("?EndTime=2024-01-15T10:00:01Z")).json.total, 2, "the end is included");
      assert.equal((await list("?StartTime=2024-01-16")).json.total, 0);
      assert.deepEqual(sids(await list(`?MessageSid=${m1}`)), [events[1]?.sid, events[0]?.sid]);
      const paged = await list(`?MessageSid=${m2}&Type=email.accepted,email.failed&PageSize=1`);
      assert.equal(paged.json.total, 2);
      assert.deepEqual(sids(paged), [events[4]?.sid]);
      const next = await request(server, "GET", paged.json.next_page_uri, { auth: evan });
      assert.deepEqual(sids(next), [events[2]?.sid]);
      assert.match(paged.json.next_page_uri, /Type=email\.accepted%2Cemail\.failed/);
    });

    test("bad filters are refused, naming what to fix; unknown parameters too", async () => {
      const type = await list("?Type=email.sent,email.opened");
      assert.equal(type.status, 400);
      assert.equal(type.json.code, 20008);
      assert.match(type.json.message, /"email\.opened"/);
      const date = await list("?StartTime=yesterday");
      assert.equal(date.json.code, 20008);
      const backwards = await list("?StartTime=2024-01-16&EndTime=2024-01-15");
      assert.equal(backwards.status, 400);
      assert.match(backwards.json.message, /EndTime/);
      const message = await list("?MessageSid=nope");
      assert.equal(message.json.code, 20008);
      const twice = await list("?Type=email.sent&Type=email.failed");
      assert.equal(twice.status, 400);
      const unknown = await list("?Status=sent");
      assert.equal(unknown.status, 400);
      assert.equal(unknown.json.code, 20009);
    });

    test("one event by its SID; another account's is not found; another account's list is refused", async () => {
      const one = await request(server, "GET", `${API}/Accounts/${evan.sid}/Events/${events[1]?.sid}.json`, {
        auth: evan,
      });
      assert.equal(one.status, 200);
      assert.equal(one.json.type, "email.sent");
      assert.equal(one.json.smtp_code, 250);
      const foreign = await request(
        server,
        "GET",
        `${API}/Accounts/${other.sid}/Events/${events[1]?.sid}.json`,
        {
          auth: other,
        },
      );
      assert.equal(foreign.status, 404);
      assert.equal(foreign.json.code, 14006);
      const otherList = await list("", other);
      assert.equal(otherList.json.total, 1);
      assert.equal(otherList.json.events[0].account_sid, other.sid);
      const refused = await request(server, "GET", `${API}/Accounts/${evan.sid}/Events.json`, {
        auth: other,
      });
      assert.equal(refused.status, 403);
    });

    test("XML: Restcomm's list attributes and one element per event", async () => {
      const xml = await request(server, "GET", `${API}/Accounts/${evan.sid}/Events?PageSize=2`, {
        auth: evan,
      });
      assert.equal(xml.status, 200);
      assert.match(xml.text, /^<RestcommResponse><Events [^>]*total="5"[^>]*><Event><Sid>EV/);
      assert.match(xml.text, /<Type>email.failed<\/Type>/);
    });

    test("a message's events, oldest first; a message not in the account is not found", async () => {
      const sent = await sendEmail(server, evan);
      assert.equal(sent.status, 200);
      const sid = sent.json.sid;
      // Earlier than anything the server itself records for this message: they come first.
      const mine = [
        eventRow(evan.sid, sid, T),
        eventRow(evan.sid, sid, T + 5, { type: "email.deferred", retry_at: T + 60_000 }),
        eventRow(evan.sid, sid, T + 9, { type: "email.sent", recipient: "john.doe@yourcompany.com" }),
      ];
      const db = openRawDb(server);
      try {
        await db.insertInto("email_events").values(mine).execute();
      } finally {
        await db.destroy();
      }
      const path = `${API}/Accounts/${evan.sid}/Email/Messages/${sid}/Events.json`;
      const listed = await request(server, "GET", path, { auth: evan });
      assert.equal(listed.status, 200, listed.text);
      assert.deepEqual(
        sids(listed).slice(0, 3),
        mine.map((e) => e.sid),
      );
      const paged = await request(server, "GET", `${path}?PageSize=2`, { auth: evan });
      assert.deepEqual(
        sids(paged),
        mine.slice(0, 2).map((e) => e.sid),
      );
      assert.equal(paged.json.first_page_uri, `${path}?Page=0&PageSize=2`);

      const missing = await request(
        server,
        "GET",
        `${API}/Accounts/${evan.sid}/Email/Messages/${newSid("EM")}/Events.json`,
        { auth: evan },
      );
      assert.equal(missing.status, 404);
      assert.equal(missing.json.code, 13020);
      const foreign = await request(
        server,
        "GET",
        `${API}/Accounts/${other.sid}/Email/Messages/${sid}/Events.json`,
        {
          auth: other,
        },
      );
      assert.equal(foreign.status, 404);
      const unknown = await request(server, "GET", `${path}?Type=email.sent`, { auth: evan });
      assert.equal(unknown.json.code, 20009);
    });
  });

  describe(`events recorded by real deliveries (${variant.kind})`, { skip: variant.skip }, () => {
    let sink: SmtpSink;
    let server: TestServer;
    let account: Credentials;

    before(async () => {
      // later@ is deferred once, never@ refused for good, now@ accepted at once.
      const deferredOnce = new Set<string>();
      sink = await SmtpSink.start({
        rules: {
          recipient(address) {
            if (address === "never@example.com") return { code: 550, message: "5.1.1 No such user" };
            if (address === "later@example.com" && !deferredOnce.has(address)) {
              deferredOnce.add(address);
              return { code: 451, message: "4.7.1 Greylisted, try again" };
            }
            return undefined;
          },
        },
      });
      server = await startMailroom({
        store: variant.kind,
        env: { ...FAST_RETRIES, MAILROOM_SMTP_URL: sink.url },
      });
      account = await server.createAccount("real@example.org", server.admin.sid);
    });
    after(async () => {
      await server?.close();
      await sink?.stop();
    });

    test("a message's events tell its story in order: accepted, then per recipient sent, deferred, failed, sent", async () => {
      const sent = await sendEmail(server, account, {
        To: "now@example.com, later@example.com, never@example.com",
      });
      assert.equal(sent.status, 200, sent.text);
      const sid = sent.json.sid;
      const final = await waitForFinal(server, account, sid);
      assert.equal(final.status, "sent");
      const path = `${API}/Accounts/${account.sid}/Email/Messages/${sid}/Events.json`;
      const listed = await request(server, "GET", path, { auth: account });
      assert.equal(listed.status, 200, listed.text);
      const story = listed.json.events.map(
        (e: { type: string; recipient?: string }) => `${e.type} ${e.recipient ?? "-"}`,
      );
      assert.equal(story[0], "email.accepted -");
      assert.deepEqual(story.slice(1, 4).sort(), [
        "email.deferred later@example.com",
        "email.failed never@example.com",
        "email.sent now@example.com",
      ]);
      assert.deepEqual(story.slice(4), ["email.sent later@example.com"]);
      const deferred = listed.json.events.find((e: { type: string }) => e.type === "email.deferred");
      assert.equal(deferred.smtp_code, 451);
      assert.equal(deferred.error_code, 13103);
      assert.ok(deferred.retry_at, "a deferral says when the next attempt is due");
      const failed = listed.json.events.find((e: { type: string }) => e.type === "email.failed");
      assert.equal(failed.smtp_code, 550);
      assert.match(failed.response, /No such user/);

      // The account's list has the same events, newest first, and filters them.
      const accountList = await request(
        server,
        "GET",
        `${API}/Accounts/${account.sid}/Events.json?MessageSid=${sid}`,
        {
          auth: account,
        },
      );
      assert.deepEqual(
        accountList.json.events.map((e: { sid: string }) => e.sid),
        listed.json.events.map((e: { sid: string }) => e.sid).reverse(),
      );
      const sentOnly = await request(
        server,
        "GET",
        `${API}/Accounts/${account.sid}/Events.json?MessageSid=${sid}&Type=email.sent`,
        { auth: account },
      );
      assert.equal(sentOnly.json.total, 2);
    });
  });
}
