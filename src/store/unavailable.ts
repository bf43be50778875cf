// Connection-level failures (as opposed to a bad query): the database is down or unreachable.
const UNAVAILABLE_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EPIPE",
  "57P01", // admin_shutdown
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now
  "08000",
  "08001",
  "08003",
  "08006",
  "53300", // too_many_connections
  "SQLITE_BUSY",
  "SQLITE_CANTOPEN",
  "SQLITE_IOERR",
  "MAILROOM_STORE_THREAD_GONE", // the store's thread died (threaded-store.ts)
]);

/**
 * True when the store's disk is full (SQLite: SQLITE_FULL, also for a full WAL or temp file;
 * PostgreSQL: disk_full). Answered 507 (20504), not as an outage: retrying soon will not help.
 */
export function isStoreFull(error: unknown): boolean {
  const code = typeof error === "object" && error !== null ? (error as { code?: unknown }).code : undefined;
  return code === "SQLITE_FULL" || code === "53100";
}

/** The code of the error a read gets when it did not finish within MAILROOM_QUERY_TIMEOUT_MS (SQLite). */
export const QUERY_TIMEOUT = "MAILROOM_QUERY_TIMEOUT";

/** True when a query was stopped for running too long: ours (SQLite reads) or PostgreSQL's statement_timeout. */
export function isQueryTimeout(error: unknown): boolean {
  const code = typeof error === "object" && error !== null ? (error as { code?: unknown }).code : undefined;
  return code === QUERY_TIMEOUT || code === "57014"; // query_canceled
}

/** True when the error means the store cannot be reached now (answered with 503, not 500). */
export function isStoreUnavailable(error: unknown): boolean {
  if (typeof error !== "object" || error === null) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string" && (UNAVAILABLE_CODES.has(code) || code.startsWith("SQLITE_IOERR")))
    return true;
  // pg reports a dead connection in words only; "not queryable" is what a ROLLBACK on it throws.
  const message = (error as { message?: unknown }).message;
  return (
    typeof message === "string" &&
    /Connection terminated|timeout exceeded when trying to connect|not queryable/i.test(message)
  );
}

/**
 * A safety net behind input validation: PostgreSQL's class 22 (data exception: a NUL byte in text,
 * a number out of range) means the value was at fault, not the server, so the client gets a 400.
 */
export function isRejectedValue(error: unknown): boolean {
  const code = typeof error === "object" && error !== null ? (error as { code?: unknown }).code : undefined;
  return typeof code === "string" && /^22[0-9A-Z]{3}$/.test(code);
}
