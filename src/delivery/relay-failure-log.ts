/** How often, at most, a relay that keeps failing is logged (each attempt is recorded anyway). */
const RELAY_FAILURE_LOG_INTERVAL_MS = 10_000;

export const RELAY_FAILURE_MESSAGE =
  "SMTP relay connection failed; deliveries are retried (see each message's attempts)";

/** One log line about a failing relay: the latest failure, and how many were not logged before it. */
export interface RelayFailureLine {
  err: Error;
  failuresSinceLastLog: number;
}

/**
 * Logs a failing relay connection at once, then at most once per interval with the number of failures
 * in between: during an outage every queued message meets it, and one line each would drown the log.
 * (It runs where the connections are, the relay thread, so an outage sends the main thread a line
 * every 10 s, not a message per failure.)
 */
export function relayFailureLog(
  warn: (line: RelayFailureLine) => void,
  clock: () => number = Date.now,
): (error: Error) => void {
  let lastLoggedAt = Number.NEGATIVE_INFINITY;
  let unlogged = 0;
  return (error) => {
    const now = clock();
    if (now - lastLoggedAt < RELAY_FAILURE_LOG_INTERVAL_MS) {
      unlogged += 1;
      return;
    }
    warn({ err: error, failuresSinceLastLog: unlogged });
    lastLoggedAt = now;
    unlogged = 0;
  };
}
