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

/** The whole schedule without jitter: about 27.6 hours with the default base. */
export function nominalSpanMs(baseMs: number): number {
  return RETRY_MULTIPLIERS.reduce((sum, multiplier) => sum + baseMs * multiplier, 0);
}

/**
 * When to try a job again after `attemptsMade` failed attempts, or null to give it up. Each delay is
 * jittered, but the last retry is never earlier than the whole nominal schedule after the job was
 * created: jitter spreads retries out, it never shortens how long a receiver has to come back
 * (Resend's schedule less 20% would be 22 hours; this keeps it over 24).
 */
export function nextRetryAt(
  attemptsMade: number,
  baseMs: number,
  createdAt: number,
  now: number,
  random: number = Math.random(),
): number | null {
  const delay = retryDelayMs(attemptsMade, baseMs, random);
  if (delay === null) return null;
  const at = now + delay;
  return attemptsMade === RETRY_MULTIPLIERS.length ? Math.max(at, createdAt + nominalSpanMs(baseMs)) : at;
}
