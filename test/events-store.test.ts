import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { newSid } from "../src/domain/ids.js";
import type { MailStore, WebhookJobsAnnounced } from "../src/store/types.js";
import { rawQuery } from "./helpers/raw-sql.js";
import { attemptRecord, emailRow, insertAccount, T0 } from "./helpers/store-rows.js";
import { openTestStore, storeVariants, type TestStore } from "./helpers/stores.js";
import { waitFor } from "./helpers/wait.js";

const LEASE = 60_000;
const DAY = "2023-11-14"; // T0's UTC day

interface EventRow {
  type: string;
  recipient: string | null;
  message_sid: string;
  smtp_code: number | null;
  error_code: number | null;
  retry_at: number | null;
}

/**
 * What a change of a message writes with it, in the same transaction (issue 13): events, usage counts,
 * Notifications, webhook jobs and StatusCallback jobs. The store is driven as the worker drives it.
 */
for (const variant of await storeVariants()) {
  describe(`store: events, usage, notifications and jobs written with each change (${variant.kind})`, {
    skip: variant.skip,
  }, () => {
    let env: TestStore;
    let store: MailStore;
    const rows = <R>(text: string, values: unknown[] = []) => rawQuery<R>(env.location, text, values);
    const eventsOf = (message: string) =>
      rows<EventRow>(
        "select type, recipient, message_sid, smtp_code, error_code, retry_at from email_events where message_sid = ? order by sid",
        [message],
      );
    const usage = (account: string) =>
      rows<{ category: string; total: number }>(
        "select category, sum(count) as total from usage_counters where account_sid = ? and day = ? group by category order by category",
        [account, DAY],
      );
    const accept = async (account: string, overrides = {}) => {
      const row = emailRow(account, overrides);
      await store.acceptEmail(row);
      const claimed = await store.claimDue("w", T0 + 1, LEASE, 1000);
      assert.ok(claimed.some((c) => c.sid === row.sid));
      return row.sid;
    };

    before(async () => {
      env = await openTestStore(variant.kind);
      store = env.store;
    });
    after(async () => {
      await env?.cleanup();
    });

    test("accepted, then sent to each recipient; usage counts the message once each way", async () => {
      const account = await insertAccount(store, "sent@example.org");
      const sid = await accept(account);
      const recipients = JSON.stringify([
        { address: "a@example.com", state: "accepted", smtp_code: 250, response: "250 a" },
        { address: "b@example.com", state: "accepted", smtp_code: 251, response: "251 b" },
      ]);
      assert.equal(await store.recordAttempt(attemptRecord(account, sid, {}, { recipients })), true);
      const events = await eventsOf(sid);
      assert.deepEqual(
        events.map((e) => [e.type, e.recipient, e.smtp_code]),
        [
          ["email.accepted", null, null],
          ["email.sent", "a@example.com", 250],
          ["email.sent", "b@example.com", 251],
        ],
      );
      assert.deepEqual(await usage(account), [
        { category: "email", total: 1 },
        { category: "email-sent", total: 1 },
      ]);
      assert.equal((await rows("select * from notifications where account_sid = ?", [account])).length, 0);
    });

    test("a deferral writes deferred events and a warning; giving up writes failed events and an error", async () => {
      const account = await insertAccount(store, "deferred@example.org");
      const sid = await accept(account);
      const deferred = JSON.stringify([
        { address: "a@example.com", state: "deferred", smtp_code: 451, response: "451 busy" },
      ]);
      const failure = { error_code: 13102, error_message: "The relay said 451 busy; trying again." };
      await store.recordAttempt(
        attemptRecord(
          account,
          sid,
          { status: "queued", retryAt: T0 + 30_000, dateDelivered: null },
          {
            recipients: deferred,
            outcome: "deferred",
            ...failure,
          },
        ),
      );
      const reclaimed = await store.claimDue("w", T0 + 30_001, LEASE, 1000);
      assert.ok(reclaimed.some((c) => c.sid === sid));
      await store.recordAttempt(
        attemptRecord(
          account,
          sid,
          {
            status: "failed",
            errorCode: 13103,
            errorMessage: "Gave up after 2 attempts.",
            dateDelivered: null,
          },
          { recipients: deferred, outcome: "deferred", attempt: 2, date_finished: T0 + 30_005, ...failure },
        ),
      );
      const events = await eventsOf(sid);
      assert.deepEqual(
        events.map((e) => [e.type, e.recipient, e.error_code, e.retry_at]),
        [
          ["email.accepted", null, null, null],
          ["email.deferred", "a@example.com", 13102, T0 + 30_000],
          ["email.failed", "a@example.com", 13102, null],
        ],
      );
      const notes = await rows<{
        log: number;
        error_code: number;
        message_text: string;
        message_sid: string;
      }>(
        "select log, error_code, message_text, message_sid from notifications where account_sid = ? order by sid",
        [account],
      );
      assert.deepEqual(notes, [
        { log: 1, error_code: 13102, message_text: failure.error_message, message_sid: sid },
        { log: 0, error_code: 13103, message_text: "Gave up after 2 attempts.", message_sid: sid },
      ]);
      assert.deepEqual(await usage(account), [
        { category: "email", total: 1 },
        { category: "email-failed", total: 1 },
      ]);
    });

    test("a refused recipient is a failed event; the message sent to the other counts as sent", async () => {
      const account = await insertAccount(store, "partial@example.org");
      const sid = await accept(account);
      const recipients = JSON.stringify([
        { address: "a@example.com", state: "accepted", smtp_code: 250, response: "250 ok" },
        { address: "b@example.com", state: "rejected", smtp_code: 550, response: "550 no such user" },
      ]);
      await store.recordAttempt(attemptRecord(account, sid, { errorCode: 13104 }, { recipients }));
      const events = await eventsOf(sid);
      assert.deepEqual(
        events.map((e) => [e.type, e.recipient, e.smtp_code]),
        [
          ["email.accepted", null, null],
          ["email.sent", "a@example.com", 250],
          ["email.failed", "b@example.com", 550],
        ],
      );
    });

    test("an attempt whose lease was lost writes no event, usage or job", async () => {
      const account = await insertAccount(store, "stale@example.org");
      const sid = await accept(account);
      const recipients = JSON.stringify([
        { address: "a@example.com", state: "accepted", smtp_code: 250, response: "250" },
      ]);
      assert.equal(
        await store.recordAttempt(attemptRecord(account, sid, { owner: "someone-else" }, { recipients })),
        false,
      );
      assert.deepEqual(
        (await eventsOf(sid)).map((e) => e.type),
        ["email.accepted"],
      );
      assert.deepEqual(await usage(account), [{ category: "email", total: 1 }]);
    });

    test("each event queues a job for every enabled webhook of its account that wants it, and a final status its StatusCallback", async () => {
      const account = await insertAccount(store, "hooked@example.org");
      const other = await insertAccount(store, "other-hooks@example.org");
      const hook = (owner: string, events: string | null, enabled = 1) => {
        const sid = newSid("WH");
        return rows(
          "insert into webhooks (sid, account_sid, url, events, enabled, secret_sealed, date_created, date_updated) values (?, ?, ?, ?, ?, ?, ?, ?)",
          [sid, owner, "https://hooks.example.net/", events, enabled, "sealed", T0, T0],
        ).then(() => sid);
      };
      const all = await hook(account, null);
      const sentOnly = await hook(account, "email.sent,email.failed");
      await hook(account, null, 0); // disabled
      await hook(other, null); // another tenant's
      const sid = await accept(account, { status_callback: "https://app.example.net/status" });
      const recipients = JSON.stringify([
        { address: "a@example.com", state: "accepted", smtp_code: 250, response: "250" },
      ]);
      await store.recordAttempt(attemptRecord(account, sid, {}, { recipients }));
      const jobs = await rows<{
        webhook_sid: string | null;
        type: string | null;
        callback_url: string | null;
        attempts: number;
      }>(
        `select q.webhook_sid, e.type, q.callback_url, q.attempts from webhook_queue q
         left join email_events e on e.sid = q.event_sid where q.message_sid = ? order by q.sid`,
        [sid],
      );
      const sorted = jobs
        .map((j) => [j.webhook_sid, j.type, j.callback_url, j.attempts])
        .sort((a, b) => String(a).localeCompare(String(b)));
      assert.deepEqual(
        sorted,
        [
          [null, null, "https://app.example.net/status", 0],
          [all, "email.accepted", null, 0],
          [all, "email.sent", null, 0],
          [sentOnly, "email.sent", null, 0],
        ].sort((a, b) => String(a).localeCompare(String(b))),
      );
    });

    test("a write that queued webhook jobs is announced (listenWebhookJobs); one that queued none is not", async () => {
      const account = await insertAccount(store, "announced@example.org");
      let announced = 0;
      const stop = store.listenWebhookJobs(() => {
        announced += 1;
      });
      try {
        await store.acceptEmail(emailRow(account));
        // The announcement crosses from the store's thread with the write's answer: give it a turn.
        await new Promise((resolve) => setTimeout(resolve, 50));
        assert.equal(announced, 0, "no webhook, no StatusCallback: nothing queued");
        await rows(
          "insert into webhooks (sid, account_sid, url, events, enabled, secret_sealed, date_created, date_updated) values (?, ?, ?, ?, ?, ?, ?, ?)",
          [newSid("WH"), account, "https://hooks.example.net/", null, 1, "sealed", T0, T0],
        );
        await store.acceptEmail(emailRow(account));
        await new Promise((resolve) => setTimeout(resolve, 50));
        assert.equal(announced, 1);
      } finally {
        stop();
      }
    });

    test("room offered by the webhook sender: jobs handed over leased at write time (SQLite), in queue order", async () => {
      const account = await insertAccount(store, "handed@example.org");
      const webhook = newSid("WH");
      await rows(
        "insert into webhooks (sid, account_sid, url, events, enabled, secret_sealed, date_created, date_updated) values (?, ?, ?, ?, ?, ?, ?, ?)",
        [webhook, account, "https://hooks.example.net/handed", null, 1, "sealed-handed", T0, T0],
      );
      const announcements: WebhookJobsAnnounced[] = [];
      const stop = store.listenWebhookJobs((announced) => announcements.push(announced));
      // The announcement crosses from the store's thread with the write's answer: give it a turn.
      const acceptOne = async () => {
        const row = emailRow(account);
        await store.acceptEmail(row);
        await waitFor("the write's announcement", () => announcements.length > 0);
        return { sid: row.sid, announced: announcements.splice(0) };
      };
      const queueRow = (message: string) =>
        rows<{ lease_owner: string | null; lease_expires_at: number | string | null }>(
          "select lease_owner, lease_expires_at from webhook_queue where message_sid = ?",
          [message],
        );
      try {
        await store.offerWebhookRoom("sender-1", LEASE, { [webhook]: 1 });
        const first = await acceptOne();
        const handed = first.announced.flatMap((a) => a.handed);
        if (variant.kind === "postgres") {
          // Room is SQLite's: on PostgreSQL every job is claimed.
          assert.equal(handed.length, 0);
          assert.ok(first.announced.some((a) => a.queued));
          assert.equal((await queueRow(first.sid))[0]?.lease_owner, null);
          return;
        }
        assert.equal(handed.length, 1);
        const job = handed[0];
        assert.equal(job?.message_sid, first.sid);
        assert.equal(job?.webhook_sid, webhook);
        assert.equal(job?.event?.type, "email.accepted");
        assert.deepEqual(job?.webhook, {
          url: "https://hooks.example.net/handed",
          secret_sealed: "sealed-handed",
          failing_since: null,
        });
        assert.equal(
          first.announced.some((a) => a.queued),
          false,
          "nothing left for claims",
        );
        const [leased] = await queueRow(first.sid);
        assert.equal(leased?.lease_owner, "sender-1");
        assert.ok(Number(leased?.lease_expires_at) > Date.now());

        // The room is used up: the next job waits for a claim.
        const second = await acceptOne();
        assert.equal(second.announced.flatMap((a) => a.handed).length, 0);
        assert.deepEqual(second.announced.at(-1)?.waiting, { webhookSids: [webhook], callbacks: false });
        assert.equal((await queueRow(second.sid))[0]?.lease_owner, null);

        // New room does not let a later job overtake the waiting one: it is given back instead.
        await store.offerWebhookRoom("sender-1", LEASE, { [webhook]: 5 });
        const third = await acceptOne();
        assert.equal(third.announced.flatMap((a) => a.handed).length, 0);
        assert.deepEqual(third.announced.at(-1)?.returned, { [webhook]: 5 });
        assert.equal((await queueRow(third.sid))[0]?.lease_owner, null);

        // Withdrawn room says what was left of it.
        await store.offerWebhookRoom("sender-1", LEASE, { [webhook]: 2 });
        assert.deepEqual(await store.offerWebhookRoom("sender-1", LEASE, null), { [webhook]: 2 });
      } finally {
        stop();
      }
    });

    test("usage counts add up across concurrent accepts (group commits, and a second store on PostgreSQL)", async () => {
      const account = await insertAccount(store, "busy@example.org");
      const second = variant.kind === "postgres" ? env.openAnother() : store;
      await Promise.all(
        Array.from({ length: 200 }, (_, i) => (i % 2 === 0 ? store : second).acceptEmail(emailRow(account))),
      );
      assert.deepEqual(await usage(account), [{ category: "email", total: 200 }]);
      const accepted = await rows<{ n: number }>(
        "select count(*) as n from email_events where account_sid = ? and type = 'email.accepted'",
        [account],
      );
      assert.equal(Number(accepted[0]?.n), 200);
    });
  });
}
