import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { newSid } from "../src/domain/ids.js";
import type { MailStore } from "../src/store/types.js";
import { acceptMany, attemptRecord, emailRow, insertAccount, T0 } from "./helpers/store-rows.js";
import { openTestStore, storeVariants, type TestStore } from "./helpers/stores.js";

const LEASE = 60_000;

for (const variant of await storeVariants()) {
  describe(`store: accept, find and list (${variant.kind})`, { skip: variant.skip }, () => {
    let env: TestStore;
    let store: MailStore;
    let account: string;
    before(async () => {
      env = await openTestStore(variant.kind);
      store = env.store;
      account = await insertAccount(store, "lister@example.org");
    });
    after(async () => {
      await env?.cleanup();
    });

    test("concurrent accepts are all committed, each with its queue entry, times read back as numbers", async () => {
      const owner = await insertAccount(store, "burst@example.org");
      const sids = await acceptMany(store, owner, 300, (i) => ({ date_created: T0 + i }));
      const page = await store.listEmails({ accountSid: owner }, 0, 1000);
      assert.equal(page.total, 300);
      assert.deepEqual(new Set(page.rows.map((r) => r.sid)), new Set(sids));
      const first = await store.findEmail(owner, sids[0] as string);
      assert.equal(typeof first?.date_created, "number");
      assert.equal(first?.date_created, T0);
      assert.equal(first?.num_attempts, 0);
      // Every accepted message is in the queue: claiming far in the future takes all of them.
      const claimed = await store.claimDue("counter", T0 + 10_000, LEASE, 1000);
      assert.equal(claimed.filter((row) => row.account_sid === owner).length, 300);
    });

    test("one bad message in a group commit fails alone; its neighbours are stored", async () => {
      const owner = await insertAccount(store, "neighbours@example.org");
      const taken = emailRow(owner);
      await store.acceptEmail(taken);
      const batch = [emailRow(owner), emailRow(owner, { sid: taken.sid }), emailRow(owner)];
      const results = await Promise.allSettled(batch.map((row) => store.acceptEmail(row)));
      assert.deepEqual(
        results.map((r) => r.status),
        ["fulfilled", "rejected", "fulfilled"],
      );
      assert.equal((await store.listEmails({ accountSid: owner }, 0, 10)).total, 3);
    });

    test("findEmail is scoped to the account", async () => {
      const other = await insertAccount(store, "other@example.org");
      const row = emailRow(account, { subject: "mine" });
      await store.acceptEmail(row);
      assert.equal((await store.findEmail(account, row.sid))?.subject, "mine");
      assert.equal(await store.findEmail(other, row.sid), undefined);
      assert.equal(await store.findEmail(account, newSid("EM")), undefined);
    });

    test("listEmails filters by To, From (case-insensitive, wildcards literal), status and time, newest first", async () => {
      const owner = await insertAccount(store, "filters@example.org");
      const rows = [
        emailRow(owner, { to_addresses: "Alice <alice@example.com>", date_created: T0 + 1 }),
        emailRow(owner, { to_addresses: "bob@example.com", status: "sent", date_created: T0 + 2 }),
        emailRow(owner, { to_addresses: "100%_off@example.com", date_created: T0 + 3 }),
        emailRow(owner, { from_address: "News <NEWS@shop.example>", date_created: T0 + 4 }),
      ];
      for (const row of rows) await store.acceptEmail(row);
      const sids = async (filter: Partial<Parameters<MailStore["listEmails"]>[0]>) =>
        (await store.listEmails({ accountSid: owner, ...filter }, 0, 50)).rows.map((r) => r.sid);
      const [alice, bob, percent, news] = rows.map((r) => r.sid);

      assert.deepEqual(await sids({}), [news, percent, bob, alice]);
      assert.deepEqual(await sids({ to: "ALICE@" }), [alice]);
      assert.deepEqual(await sids({ to: "%_" }), [percent]);
      assert.deepEqual(await sids({ to: "0%" }), [percent]);
      assert.deepEqual(await sids({ from: "news@shop" }), [news]);
      assert.deepEqual(await sids({ status: "sent" }), [bob]);
      assert.deepEqual(await sids({ createdFrom: T0 + 2, createdBefore: T0 + 4 }), [percent, bob]);
    });

    test("listEmails pages with offset and limit over a stable order, and counts the whole set", async () => {
      const owner = await insertAccount(store, "pages@example.org");
      // Two messages per millisecond: ties are broken by SID, so pages never overlap or skip.
      const sids = await acceptMany(store, owner, 25, (i) => ({ date_created: T0 + Math.floor(i / 2) }));
      const seen: string[] = [];
      for (let offset = 0; offset < 30; offset += 10) {
        const page = await store.listEmails({ accountSid: owner }, offset, 10);
        assert.equal(page.total, 25);
        seen.push(...page.rows.map((r) => r.sid));
      }
      assert.equal(seen.length, 25);
      assert.deepEqual(new Set(seen), new Set(sids));
      const again = (await store.listEmails({ accountSid: owner }, 0, 25)).rows.map((r) => r.sid);
      assert.deepEqual(seen, again);
    });
  });

  describe(`store: claiming, attempts and leases (${variant.kind})`, { skip: variant.skip }, () => {
    let env: TestStore;
    let store: MailStore;
    let account: string;
    before(async () => {
      env = await openTestStore(variant.kind);
      store = env.store;
      account = await insertAccount(store, "worker@example.org");
    });
    after(async () => {
      await env?.cleanup();
    });

    /** Claims everything due at `now` and gives it straight back, so each test starts from an idle queue. */
    async function drain(now: number): Promise<void> {
      for (;;) {
        const rows = await store.claimDue("drain", now, 1, 500);
        if (rows.length === 0) return;
        for (const row of rows) {
          await store.recordAttempt(attempt(row.sid, 1, now, "sent", null, "drain"));
        }
      }
    }

    function attempt(
      messageSid: string,
      n: number,
      at: number,
      status: string,
      retryAt: number | null,
      owner = "w",
    ) {
      const sent = status === "sent";
      return attemptRecord(
        account,
        messageSid,
        { owner, status, retryAt, dateDelivered: sent ? at + 5 : null },
        {
          attempt: n,
          date_started: at,
          date_finished: at + 5,
          outcome: sent ? "delivered" : "deferred",
          smtp_code: sent ? 250 : 451,
          response: sent ? "250 OK" : "451 try later",
          recipients: JSON.stringify([
            {
              address: "john.doe@example.com",
              state: sent ? "accepted" : "deferred",
              smtp_code: sent ? 250 : 451,
              response: sent ? "250 OK" : "451 try later",
            },
          ]),
        },
      );
    }

    test("claimDue leases only due messages, oldest first, and marks them sending", async () => {
      const now = T0 + 1_000_000;
      await drain(now + 10_000_000);
      const early = emailRow(account, { date_created: now - 20 });
      const later = emailRow(account, { date_created: now - 10 });
      const future = emailRow(account, { date_created: now + 1000 });
      for (const row of [later, future, early]) await store.acceptEmail(row);

      const claimed = await store.claimDue("w1", now, LEASE, 10);
      assert.deepEqual(claimed.map((r) => r.sid).sort(), [early.sid, later.sid].sort());
      for (const row of claimed) assert.equal(row.status, "sending");
      assert.equal((await store.findEmail(account, future.sid))?.status, "queued");

      const oneAtATime = await store.claimDue("w2", now + 2000, LEASE, 1);
      assert.deepEqual(
        oneAtATime.map((r) => r.sid),
        [future.sid],
        "leased messages are not claimed again; the future one is due now",
      );
      // Every message is leased: nothing waits, so no wake-up is planned (leases are the holders' to settle).
      assert.equal(await store.nextDueAt(), null);
      await drain(now + 10_000_000);
    });

    test("a lease that runs out (its owner died) is claimable by another owner, not before", async () => {
      const now = T0 + 2_000_000;
      await drain(now + 10_000_000);
      const row = emailRow(account, { date_created: now });
      await store.acceptEmail(row);
      assert.equal((await store.claimDue("dead", now, 1000, 10)).length, 1);
      assert.equal((await store.claimDue("alive", now + 999, 1000, 10)).length, 0);
      const reclaimed = await store.claimDue("alive", now + 1001, 1000, 10);
      assert.deepEqual(
        reclaimed.map((r) => r.sid),
        [row.sid],
      );
      await drain(now + 10_000_000);
    });

    test("recordAttempt: a final result leaves the queue; a retry comes back at its time", async () => {
      const now = T0 + 3_000_000;
      await drain(now + 10_000_000);
      const done = emailRow(account, { date_created: now });
      const retried = emailRow(account, { date_created: now });
      await store.acceptEmail(done);
      await store.acceptEmail(retried);
      assert.equal((await store.claimDue("w", now, LEASE, 10)).length, 2);

      await store.recordAttempt(attempt(done.sid, 1, now, "sent", null));
      await store.recordAttempt(attempt(retried.sid, 1, now, "queued", now + 30_000));

      const sent = await store.findEmail(account, done.sid);
      assert.equal(sent?.status, "sent");
      assert.equal(sent?.num_attempts, 1);
      assert.equal(sent?.date_delivered, now + 5);
      const attempts = await store.listAttempts(done.sid);
      assert.equal(attempts.length, 1);
      assert.equal(attempts[0]?.smtp_code, 250);

      const waiting = await store.findEmail(account, retried.sid);
      assert.equal(waiting?.status, "queued");
      assert.equal(waiting?.num_attempts, 1);
      assert.equal(await store.nextDueAt(), now + 30_000);
      assert.equal((await store.claimDue("w", now + 29_999, LEASE, 10)).length, 0);
      const again = await store.claimDue("w", now + 30_000, LEASE, 10);
      assert.deepEqual(
        again.map((r) => r.sid),
        [retried.sid],
      );
      await store.recordAttempt(attempt(retried.sid, 2, now + 30_000, "sent", null));
      assert.equal((await store.findEmail(account, retried.sid))?.num_attempts, 2);
      assert.equal(await store.nextDueAt(), null);
    });

    test("attempts recorded together: each message gets its own outcome and times; a stale owner changes nothing", async () => {
      const now = T0 + 3_200_000;
      await drain(now + 10_000_000);
      const row = () => emailRow(account, { date_created: now });
      const [sentA, sentB, failed, retried, stale, sentC, retriedLater] = [
        row(),
        row(),
        row(),
        row(),
        row(),
        row(),
        row(),
      ];
      const rows = [sentA, sentB, failed, retried, stale, sentC, retriedLater];
      for (const message of rows) await store.acceptEmail(message);
      assert.equal((await store.claimDue("w", now, LEASE, 10)).length, rows.length);
      const failedRecord = {
        ...attempt(failed.sid, 1, now + 20, "failed", null),
        errorCode: 13101,
        errorMessage: "refused",
      };
      // Started in one turn, so the group commit writes them in one transaction.
      const results = await Promise.all([
        store.recordAttempt(attempt(sentA.sid, 1, now + 10, "sent", null)),
        store.recordAttempt(attempt(sentB.sid, 1, now + 11, "sent", null)),
        store.recordAttempt(failedRecord),
        store.recordAttempt(attempt(retried.sid, 1, now + 30, "queued", now + 60_000)),
        store.recordAttempt(attempt(stale.sid, 1, now + 40, "sent", null, "someone-else")),
        store.recordAttempt(attempt(sentC.sid, 1, now + 12, "sent", null)),
        store.recordAttempt(attempt(retriedLater.sid, 1, now + 31, "queued", now + 90_000)),
      ]);
      assert.deepEqual(results, [true, true, true, true, false, true, true]);

      const view = async (sid: string) => {
        const found = await store.findEmail(account, sid);
        assert.ok(found, sid);
        return found;
      };
      for (const [sent, at] of [
        [sentA, now + 10],
        [sentB, now + 11],
        [sentC, now + 12],
      ] as const) {
        const message = await view(sent.sid);
        assert.equal(message.status, "sent");
        assert.equal(message.date_updated, at + 5, "each message keeps its own finish time");
        assert.equal(message.date_delivered, at + 5);
        assert.equal(message.num_attempts, 1);
        assert.equal(message.next_attempt_at, null);
      }
      const refused = await view(failed.sid);
      assert.deepEqual(
        [refused.status, refused.error_code, refused.error_message, refused.date_delivered],
        ["failed", 13101, "refused", null],
      );
      const waiting = await view(retried.sid);
      assert.deepEqual([waiting.status, waiting.next_attempt_at], ["queued", now + 60_000]);
      const waitingLonger = await view(retriedLater.sid);
      assert.deepEqual(
        [waitingLonger.status, waitingLonger.next_attempt_at],
        ["queued", now + 90_000],
        "each retried message keeps its own retry time",
      );
      const untouched = await view(stale.sid);
      assert.deepEqual(
        [untouched.status, untouched.num_attempts],
        ["sending", 0],
        "the lease holder (w) decides, not a stale owner",
      );
      assert.equal((await store.listAttempts(stale.sid)).length, 1, "the stale attempt is kept as history");
      await store.recordAttempt(attempt(stale.sid, 1, now + 50, "sent", null));
      await drain(now + 10_000_000);
    });

    test("a message accepted with a lease is sending at once and not claimable until the lease runs out", async () => {
      const now = T0 + 3_300_000;
      await drain(now + 10_000_000);
      const leased = emailRow(account, { date_created: now });
      const open = emailRow(account, { date_created: now });
      await store.acceptEmail(leased, { owner: "accepter", expiresAt: now + LEASE });
      await store.acceptEmail(open, null);
      assert.equal((await store.findEmail(account, leased.sid))?.status, "sending");
      assert.equal((await store.findEmail(account, open.sid))?.status, "queued");
      const sending = await store.listEmails({ accountSid: account, status: "sending" }, 0, 50);
      assert.ok(sending.rows.some((row) => row.sid === leased.sid));
      assert.ok(!sending.rows.some((row) => row.sid === open.sid));

      const claimed = await store.claimDue("other", now + 1, LEASE, 10);
      assert.deepEqual(
        claimed.map((row) => row.sid),
        [open.sid],
        "only the unleased message is claimable",
      );
      assert.equal(
        await store.recordAttempt(attempt(leased.sid, 1, now + 2, "sent", null, "accepter")),
        true,
      );
      const reclaimed = await store.claimDue("other", now + LEASE + 1, LEASE, 10);
      assert.deepEqual(reclaimed, [], "a settled message is gone from the queue");
      await drain(now + 10_000_000);
    });

    test("a worker that lost its lease records its attempt but leaves the new owner's claim alone", async () => {
      const now = T0 + 3_500_000;
      await drain(now + 10_000_000);
      const row = emailRow(account, { date_created: now });
      await store.acceptEmail(row);
      assert.equal((await store.claimDue("stalled", now, 1000, 10)).length, 1);
      assert.equal((await store.claimDue("successor", now + 1001, LEASE, 10)).length, 1);

      const stale = await store.recordAttempt(attempt(row.sid, 1, now + 2000, "sent", null, "stalled"));
      assert.equal(stale, false, "the stalled worker learns that it no longer owns the message");
      assert.equal(
        (await store.listAttempts(row.sid)).length,
        1,
        "the attempt itself is history and is kept",
      );
      const during = await store.findEmail(account, row.sid);
      assert.equal(during?.status, "sending", "the stalled worker does not decide the status");
      assert.equal(during?.num_attempts, 0);
      assert.equal(await store.nextDueAt(), null, "the successor holds it: nothing waits");

      assert.equal(
        await store.recordAttempt(attempt(row.sid, 2, now + 3000, "sent", null, "successor")),
        true,
      );
      assert.equal(await store.nextDueAt(), null);
      const after = await store.findEmail(account, row.sid);
      assert.equal(after?.status, "sent");
      assert.equal(after?.next_attempt_at, null);
    });

    test("an attempt's writes are one: a failing neighbour in its group commit leaves it settled and the message final", async () => {
      const now = T0 + 3_700_000;
      await drain(now + 10_000_000);
      const row = emailRow(account, { date_created: now });
      const earlier = emailRow(account, { date_created: now });
      await store.acceptEmail(row);
      await store.acceptEmail(earlier);
      assert.equal((await store.claimDue("w", now, LEASE, 10)).length, 2);
      const first = attempt(earlier.sid, 1, now, "sent", null);
      assert.equal(await store.recordAttempt(first), true);

      // Made in one turn, so they cross to the store thread together and meet in one group commit:
      // an attempt record, another record whose attempt SID is taken, and (SQLite, where accepts
      // share the attempts' commits) an accept whose message SID is taken.
      const bad = attempt(earlier.sid, 2, now, "sent", null);
      bad.attempt.sid = first.attempt.sid;
      const [good, badRecord, badAccept] = await Promise.allSettled([
        store.recordAttempt(attempt(row.sid, 1, now, "sent", null)),
        store.recordAttempt(bad),
        store.acceptEmail(emailRow(account, { sid: row.sid, date_created: now })),
      ]);
      assert.equal(badRecord.status, "rejected", "the record with a taken attempt SID fails");
      assert.equal(badAccept.status, "rejected", "the accept with a taken message SID fails");
      assert.deepEqual(good, { status: "fulfilled", value: true }, "the attempt settled its message");
      const message = await store.findEmail(account, row.sid);
      assert.equal(message?.status, "sent", "the message is final");
      assert.equal(message?.num_attempts, 1);
      assert.equal(message?.next_attempt_at, null, "and out of the queue");
      assert.equal((await store.listAttempts(row.sid)).length, 1, "its attempt is recorded once");
      assert.deepEqual(
        await store.claimDue("other", now + 10 * LEASE, LEASE, 10),
        [],
        "nothing left to claim",
      );
    });

    test("reclaimLeases gives back every lease, whoever holds it (a server that owns the store alone, at start)", async () => {
      const now = T0 + 3_800_000;
      await drain(now + 10_000_000);
      const rows = [emailRow(account, { date_created: now }), emailRow(account, { date_created: now })];
      for (const row of rows) await store.acceptEmail(row);
      await store.claimDue("died", now, LEASE, 1);
      await store.claimDue("also-died", now, LEASE, 1);
      assert.deepEqual(await store.claimDue("new", now, LEASE, 10), [], "both leased");
      assert.equal(await store.reclaimLeases(), 2);
      const claimed = await store.claimDue("new", now, LEASE, 10);
      assert.deepEqual(claimed.map((row) => row.sid).sort(), rows.map((row) => row.sid).sort());
      await drain(now + 10_000_000);
    });

    test("a silent owner's leases are taken over before they run out; a beating owner's are not", {
      skip: variant.kind === "sqlite" && "PostgreSQL: an SQLite server owns its file alone",
    }, async () => {
      const timeoutMs = 10_000;
      const now = Date.now();
      const other = env.openAnother();
      await other.startHeartbeat("alive-then-killed", timeoutMs);
      await store.startHeartbeat("successor", timeoutMs);
      try {
        const row = emailRow(account, { date_created: now - 1 });
        await store.acceptEmail(row);
        assert.equal((await other.claimDue("alive-then-killed", now, LEASE, 10)).length, 1);
        assert.deepEqual(
          await store.claimDue("successor", now + 1, LEASE, 10),
          [],
          "its owner beats: the lease holds",
        );
        // Closed without stopping its heartbeat, as kill -9 would: its row stays and grows old.
        await other.close();
        const later = Date.now() + timeoutMs + 1;
        assert.ok(later < now + LEASE, "the lease itself has not run out");
        const taken = await store.claimDue("successor", later, LEASE, 10);
        assert.deepEqual(
          taken.map((r) => r.sid),
          [row.sid],
        );
        assert.equal(await store.recordAttempt(attempt(row.sid, 1, later, "sent", null, "successor")), true);
      } finally {
        await store.stopHeartbeat("successor");
      }
    });

    test("releaseLeases gives back only the caller's leases, at once, as queued", async () => {
      const now = T0 + 4_000_000;
      await drain(now + 10_000_000);
      const mine = emailRow(account, { date_created: now });
      const theirs = emailRow(account, { date_created: now + 1 });
      await store.acceptEmail(mine);
      await store.acceptEmail(theirs);
      assert.equal((await store.claimDue("me", now, LEASE, 1)).length, 1);
      assert.equal((await store.claimDue("them", now + 1, LEASE, 1)).length, 1);

      await store.releaseLeases("me", [mine.sid, theirs.sid]);
      assert.equal((await store.findEmail(account, mine.sid))?.status, "queued");
      assert.equal((await store.findEmail(account, theirs.sid))?.status, "sending");
      const next = await store.claimDue("next", now + 2, LEASE, 10);
      assert.deepEqual(
        next.map((r) => r.sid),
        [mine.sid],
      );
      await store.releaseLeases("me", []);
      await drain(now + 10_000_000);
    });

    test("MIME is stored with the attempt that composed it, once, and read back", async () => {
      const now = T0 + 5_000_000;
      await drain(now + 10_000_000);
      const row = emailRow(account, { date_created: now });
      await store.acceptEmail(row);
      assert.equal((await store.claimDue("w", now, LEASE, 10)).length, 1);
      await store.recordAttempt({
        ...attempt(row.sid, 1, now, "queued", now + 1000),
        mime: "Subject: first\r\n\r\nbody",
      });
      assert.equal((await store.claimDue("w", now + 1000, LEASE, 10)).length, 1);
      await store.recordAttempt({
        ...attempt(row.sid, 2, now + 1000, "sent", null),
        mime: "Subject: second\r\n\r\nbody",
      });
      assert.equal(await store.findMime(row.sid), "Subject: first\r\n\r\nbody");
      assert.equal(await store.findMime(newSid("EM")), undefined);
    });

    test("findRetryContexts: each message's attempts in order and its MIME, one entry per SID asked", async () => {
      const now = T0 + 6_000_000;
      await drain(now + 10_000_000);
      const twice = emailRow(account, { date_created: now });
      const once = emailRow(account, { date_created: now + 1 });
      await store.acceptEmail(twice);
      await store.acceptEmail(once);
      assert.equal((await store.claimDue("w", now + 1, LEASE, 10)).length, 2);
      await store.recordAttempt({ ...attempt(twice.sid, 1, now + 1, "queued", now + 2), mime: "MIME twice" });
      await store.recordAttempt(attempt(once.sid, 1, now + 1, "queued", now + 2));
      assert.equal((await store.claimDue("w", now + 2, LEASE, 10)).length, 2);
      await store.recordAttempt(attempt(twice.sid, 2, now + 2, "queued", now + 3));
      const never = newSid("EM");
      const contexts = await store.findRetryContexts([twice.sid, once.sid, never]);
      assert.deepEqual(
        contexts.get(twice.sid)?.attempts.map((a) => a.attempt),
        [1, 2],
      );
      assert.equal(contexts.get(twice.sid)?.mime, "MIME twice");
      assert.deepEqual(
        contexts.get(once.sid)?.attempts.map((a) => [a.attempt, a.smtp_code]),
        [[1, 451]],
      );
      assert.equal(contexts.get(once.sid)?.mime, undefined);
      assert.deepEqual(contexts.get(never), { attempts: [], mime: undefined });
      assert.equal(contexts.size, 3);
      await drain(now + 10_000_000);
    });
  });
}
