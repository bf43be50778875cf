/**
 * When a failed webhook delivery (or StatusCallback) is tried again. Resend's schedule, scaled by the
 * first delay (MAILROOM_WEBHOOK_RETRY_BASE_MS, 5 s by default): 5 s, 5 min, 30 min, 2 h, 5 h, 10 h,
 * 10 h, about 28 hours in all; after the last retry fails, the delivery is given up.
 */
export const RETRY_MULTIPLIERS: readonly number[] = [1, 60, 360, 1440, 3600, 7200, 7200];

/** ±20%: jobs that failed together (a receiver down) do not all come back in the same instant. */
const JITTER = 0.2;

/**
 * The delay before the next attempt after `attemptsMade` attempts (1 after the first) all failed, or
 * null when that was the last one. `random` is in [0, 1).
 */
export function retryDelayMs(
  attemptsMade: number,
  baseMs: number,
  random: number = Math.random(),
): number | null {
  const multiplier = RETRY_MULTIPLIERS[attemptsMade - 1];
  if (multiplier === undefined) return null;
  const nominal = baseMs * multiplier;
  return Math.max(1, Math.round(nominal * (1 - JITTER + 2 * JITTER * random)));
}

/** The attempts a job gets in all: the first and one per retry. */
export const MAX_ATTEMPTS = RETRY_MULTIPLIERS.length + 1;
