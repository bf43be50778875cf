import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { readHistory } from "../src/delivery/history.js";
import { judge } from "../src/delivery/outcome.js";
import { backoffDelay, nextRetry, type RetryPolicy } from "../src/delivery/retry-policy.js";
import type { RecipientOutcome, SendReport } from "../src/delivery/transports/transport.js";
import type { EmailAttemptRow } from "../src/store/types.js";

const policy: RetryPolicy = { maxAttempts: 5, maxAgeMs: 3_600_000, baseMs: 1000, maxMs: 10_000 };
const lowest = () => 0;
const highest = () => 0.999999;

describe("retry policy", () => {
  test("the delay doubles from baseMs and stops growing at maxMs", () => {
    const upper = [1, 2, 3, 4, 5, 6, 40, 2000].map((n) => backoffDelay(n, policy, highest));
    assert.deepEqual(upper, [1000, 2000, 4000, 8000, 10_000, 10_000, 10_000, 10_000]);
  });

  test("jitter spreads each delay over [half, all] of it", () => {
    assert.equal(backoffDelay(3, policy, lowest), 2000);
    for (let i = 0; i < 200; i++) {
      const delay = backoffDelay(3, policy);
      assert.ok(delay >= 2000 && delay <= 4000, String(delay));
    }
  });

  test("retries until the attempt limit, then gives up", () => {
    assert.deepEqual(nextRetry(1, 4, 0, 0, policy, highest), { retryAt: 1000 });
    assert.deepEqual(nextRetry(5, 5, 0, 0, policy, highest), { giveUp: "attempts" });
  });

  test("without an attempt limit only the age ends retrying", () => {
    const ageOnly: RetryPolicy = { ...policy, maxAttempts: null };
    assert.deepEqual(nextRetry(500, 500, 0, 0, ageOnly, highest), { retryAt: 10_000 });
    assert.deepEqual(nextRetry(500, 500, 0, 3_600_000, ageOnly), { giveUp: "age" });
  });

  test("backoff follows every attempt, the limit only the counted ones", () => {
    // Nine attempts so far (most of them against an unreachable relay), two counted: still retrying.
    assert.deepEqual(nextRetry(9, 2, 0, 0, policy, highest), { retryAt: 10_000 });
  });

  test("gives up once the message is older than maxAgeMs, and never schedules past that age", () => {
    assert.deepEqual(nextRetry(1, 1, 0, 3_600_000, policy), { giveUp: "age" });
    assert.deepEqual(nextRetry(4, 1, 0, 3_599_000, policy, highest), { retryAt: 3_600_000 });
  });
});

const accepted = (address: string): RecipientOutcome => ({
  address,
  state: "accepted",
  smtp_code: 250,
  response: "250 ok",
});
const deferred = (address: string): RecipientOutcome => ({
  address,
  state: "deferred",
  smtp_code: 450,
  response: "450 4.2.1 Mailbox busy",
});
const rejected = (address: string): RecipientOutcome => ({
  address,
  state: "rejected",
  smtp_code: 550,
  response: "550 5.1.1 No such user",
});
const report = (recipients: RecipientOutcome[], failure: SendReport["failure"] = null): SendReport => ({
  recipients,
  smtpCode: null,
  response: null,
  failure,
});
const context = (attempt: number, history = readHistory([])) => ({
  attempt,
  history,
  acceptedAt: 0,
  now: 1000,
  policy,
  random: highest,
});

function attemptRow(
  attempt: number,
  errorCode: number | null,
  recipients: RecipientOutcome[],
): EmailAttemptRow {
  return {
    sid: `EA${attempt}`,
    message_sid: "EM1",
    account_sid: "AC1",
    attempt,
    date_started: 0,
    date_finished: 0,
    outcome: "deferred",
    smtp_code: null,
    response: null,
    error_code: errorCode,
    error_message: null,
    recipients: JSON.stringify(recipients),
  };
}

describe("judging an attempt", () => {
  test("everyone accepted: sent, no error", () => {
    const verdict = judge(report([accepted("a@x.example"), accepted("b@x.example")]), context(1));
    assert.deepEqual(
      [verdict.outcome, verdict.status, verdict.errorCode, verdict.retryAt],
      ["accepted", "sent", null, null],
    );
  });

  test("a deferred recipient sends the message back to the queue, with the reply and the next time", () => {
    const verdict = judge(report([accepted("a@x.example"), deferred("b@x.example")]), context(1));
    assert.equal(verdict.outcome, "partial");
    assert.equal(verdict.status, "queued");
    assert.equal(verdict.retryAt, 2000);
    assert.equal(verdict.errorCode, 13103);
    assert.match(verdict.errorMessage ?? "", /b@x\.example \("450 4\.2\.1 Mailbox busy"\)/);
    assert.match(verdict.errorMessage ?? "", /next one is at 1970-01-01T00:00:02\.000Z/);
  });

  test("recipients settled earlier count toward the final verdict", () => {
    const history = readHistory([attemptRow(1, 13103, [accepted("a@x.example"), deferred("b@x.example")])]);
    const verdict = judge(report([rejected("b@x.example")]), context(2, history));
    assert.equal(verdict.outcome, "rejected");
    assert.equal(verdict.status, "sent");
    assert.equal(verdict.errorCode, 13102);
    assert.match(
      verdict.errorMessage ?? "",
      /Delivered to 1 of 2 recipients; the relay refused b@x\.example/,
    );
  });

  test("everyone accepted: the whole verdict, and an earlier refusal still named", () => {
    assert.deepEqual(judge(report([accepted("a@x.example")]), context(1)), {
      outcome: "accepted",
      attemptFailure: null,
      status: "sent",
      errorCode: null,
      errorMessage: null,
      retryAt: null,
    });
    // All of this attempt accepted, but one refused before: the verdict still names the refusal.
    const history = readHistory([attemptRow(1, 13103, [rejected("a@x.example"), deferred("b@x.example")])]);
    const verdict = judge(report([accepted("b@x.example")]), context(2, history));
    assert.equal(verdict.outcome, "accepted");
    assert.equal(verdict.status, "sent");
    assert.equal(verdict.errorCode, 13102);
    assert.match(
      verdict.errorMessage ?? "",
      /Delivered to 1 of 2 recipients; the relay refused a@x\.example/,
    );
  });

  test("every recipient refused: failed at once", () => {
    const verdict = judge(report([rejected("a@x.example")]), context(1));
    assert.deepEqual([verdict.status, verdict.errorCode, verdict.retryAt], ["failed", 13101, null]);
    assert.match(verdict.errorMessage ?? "", /550 5\.1\.1 No such user/);
  });

  test("a message over the relay's SIZE limit: failed at once, the attempt rejected", () => {
    const tooLarge = {
      code: 13109 as const,
      message: "The message is 2,001 bytes; the relay accepts at most 2,000.",
    };
    const unsent = (address: string): RecipientOutcome => ({
      address,
      state: "rejected",
      smtp_code: null,
      response: null,
    });
    const verdict = judge(report([unsent("a@x.example"), unsent("b@x.example")], tooLarge), context(1));
    assert.deepEqual(
      [verdict.outcome, verdict.status, verdict.errorCode, verdict.errorMessage, verdict.retryAt],
      ["rejected", "failed", 13109, tooLarge.message, null],
    );
    assert.deepEqual(verdict.attemptFailure, tooLarge);
  });

  test("out of attempts after a partial delivery: sent, and the error names who did not get it", () => {
    const history = readHistory(
      [1, 2, 3, 4].map((n) => attemptRow(n, 13103, n === 1 ? [accepted("a@x.example")] : [])),
    );
    const verdict = judge(report([deferred("b@x.example")]), context(5, history));
    assert.equal(verdict.status, "sent");
    assert.equal(verdict.errorCode, 13106);
    assert.match(verdict.errorMessage ?? "", /MAILROOM_MAX_ATTEMPTS is 5/);
    assert.match(verdict.errorMessage ?? "", /delivered to 1 of 2 recipients; not to b@x\.example/);
  });

  test("attempts that never reached the relay do not use up the limit", () => {
    const unreachable = {
      code: 13104 as const,
      message: "Could not deliver through the relay: connection refused.",
    };
    const history = readHistory([1, 2, 3, 4, 5, 6].map((n) => attemptRow(n, 13104, [])));
    assert.equal(history.counted, 0);
    const verdict = judge(report([deferred("a@x.example")], unreachable), context(7, history));
    assert.equal(verdict.status, "queued");
    assert.equal(verdict.errorCode, 13104);
  });

  test("an attempt that failed before reaching the transport is retried", () => {
    const verdict = judge(report([], { code: 13108, message: "Mailroom failed." }), context(1));
    assert.equal(verdict.status, "queued");
  });
});
