import assert from "node:assert/strict";
import { test } from "node:test";
import {
  MAX_ATTEMPTS,
  nextRetryAt,
  nominalSpanMs,
  RETRY_MULTIPLIERS,
  retryDelayMs,
} from "../src/webhooks/retry-schedule.js";

test("webhook retries follow Resend's schedule from the base delay, ±20%, for more than 24 hours", () => {
  const base = 5000;
  // Without jitter's extremes (random 0.5 is the nominal delay): 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
  const nominal = RETRY_MULTIPLIERS.map((_, i) => retryDelayMs(i + 1, base, 0.5));
  assert.deepEqual(nominal, [5000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000]);
  // Every delay 20% short: the last retry still comes the whole nominal schedule after the first attempt.
  let at = 0;
  for (let attempt = 1; attempt < MAX_ATTEMPTS; attempt++)
    at = nextRetryAt(attempt, base, 0, at, 0) as number;
  assert.equal(at, nominalSpanMs(base));
  assert.ok(at > 24 * 3_600_000, `retrying lasts over 24 h (${at} ms)`);
  assert.equal(nextRetryAt(MAX_ATTEMPTS, base, 0, at, 0), null);
  // Every delay 20% long: later still, never capped.
  at = 0;
  for (let attempt = 1; attempt < MAX_ATTEMPTS; attempt++) {
    at = nextRetryAt(attempt, base, 0, at, 0.999999) as number;
  }
  assert.ok(at > nominalSpanMs(base) * 1.19);
  for (let attempt = 1; attempt < MAX_ATTEMPTS; attempt++) {
    const multiplier = RETRY_MULTIPLIERS[attempt - 1] as number;
    assert.equal(retryDelayMs(attempt, base, 0), Math.round(base * multiplier * 0.8));
    assert.ok((retryDelayMs(attempt, base, 0.999999) as number) <= base * multiplier * 1.2);
  }
  // After the first attempt and seven retries, the job is given up.
  assert.equal(MAX_ATTEMPTS, 8);
  assert.equal(retryDelayMs(MAX_ATTEMPTS, base), null);
});
