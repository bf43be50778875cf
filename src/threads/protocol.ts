import type { WireError } from "./wire-error.js";

/**
 * What crosses between a thread and its client (thread-client.ts, thread-server.ts): calls one way;
 * replies and events the other. Each side sends arrays of them (Outbox).
 */
export interface ThreadCall {
  id: number;
  method: string;
  args: unknown[];
  /** When the caller stops waiting (Date.now() time): a call still queued then is not started. */
  deadline?: number;
}

/** A reply to one call, or an event the thread raised by itself (e.g. another process queued mail). */
export type ThreadReply = { id: number; value?: unknown; error?: WireError } | ThreadEvent;

export interface ThreadEvent {
  event: string;
  data?: unknown;
}

/**
 * The code of the error a thread answers for a call with a deadline that it did not start in time; the
 * client gives its caller its own timeout error instead (the two race when the machine is busy).
 */
export const DEADLINE_PASSED = "MAILROOM_DEADLINE_PASSED";

/** The method every thread answers last: it replies, then stops listening, so its event loop empties and it ends. */
export const CLOSE_METHOD = "close";

/**
 * What a thread answers, as an interface both sides are written against: the client's calls are
 * checked against it (method names and arguments), and the thread serves an object implementing it.
 * Every API has `close`. Arguments and results must survive structured cloning.
 */
export type ThreadApi = { close(): Promise<void> };

/** The names of an API's methods. */
export type MethodOf<Api> = {
  [K in keyof Api]: Api[K] extends (...args: never[]) => unknown ? K : never;
}[keyof Api] &
  string;
