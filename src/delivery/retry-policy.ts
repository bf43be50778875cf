/** When to try a temporarily failed message again, and when to stop trying. */
export interface RetryPolicy {
  /**
   * Attempts the relay answered (see history.ts) before the message fails; null for no limit. The
   * age is the limit that matters (Postfix has only its queue lifetime): a count would end retrying
   * at a time that depends on the backoff, long before a relay that defers for hours recovers.
   */
  maxAttempts: number | null;
  /** Time after acceptance when retrying stops. */
  maxAgeMs: number;
  /** Delay after the first failed attempt; it doubles with each further one. */
  baseMs: number;
  /** The longest delay between two attempts. */
  maxMs: number;
}

export type RetryDecision = { retryAt: number } | { giveUp: "attempts" | "age" };

/**
 * The delay after `failedAttempts` failures: baseMs·2^(failedAttempts−1), capped at maxMs, then
 * scaled by a random factor in [0.5, 1] so that messages which failed together (a relay outage)
 * do not all come back in the same instant.
 */
export function backoffDelay(failedAttempts: number, policy: RetryPolicy, random = Math.random): number {
  const exponent = Math.max(0, failedAttempts - 1);
  // 2^exponent overflows to Infinity long before it matters; the cap handles that too.
  const capped = Math.min(policy.maxMs, policy.baseMs * 2 ** exponent);
  return Math.round(capped * (0.5 + random() / 2));
}

/**
 * Decides what follows a temporary failure. `failedAttempts` drives the backoff (every attempt,
 * so an unreachable relay is not hammered); `countedAttempts` is what the attempt limit applies to.
 * The last retry is pulled in to the age limit rather than scheduled past it, so a message gets
 * one final try at its deadline instead of silently losing the remainder of its allowed time.
 */
export function nextRetry(
  failedAttempts: number,
  countedAttempts: number,
  acceptedAt: number,
  now: number,
  policy: RetryPolicy,
  random = Math.random,
): RetryDecision {
  if (policy.maxAttempts !== null && countedAttempts >= policy.maxAttempts) return { giveUp: "attempts" };
  const deadline = acceptedAt + policy.maxAgeMs;
  if (now >= deadline) return { giveUp: "age" };
  return { retryAt: Math.min(now + backoffDelay(failedAttempts, policy, random), deadline) };
}
