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
  "SQLITE_FULL",
  "SQLITE_IOERR",
  "MAILROOM_STORE_THREAD_GONE", // the store's thread died (threaded-store.ts)
]);

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
