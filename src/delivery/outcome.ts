import { DeliveryErrorCodes } from "../domain/errors.js";
import type { MessageStatus } from "../domain/message-status.js";
import { type AttemptHistory, countsTowardLimit } from "./history.js";
import { nextRetry, type RetryPolicy } from "./retry-policy.js";
import type { RecipientOutcome, SendFailure, SendReport } from "./transports/transport.js";

export type AttemptOutcome = "accepted" | "partial" | "deferred" | "rejected";

/** What one attempt concluded: the attempt row's own verdict, and the message's new state. */
export interface Verdict {
  outcome: AttemptOutcome;
  /** Why this attempt did not deliver to every recipient (null when it did). */
  attemptFailure: SendFailure | null;
  status: Extract<MessageStatus, "queued" | "sent" | "failed">;
  errorCode: number | null;
  errorMessage: string | null;
  /** When to try again; null once the message is final. */
  retryAt: number | null;
}

export interface JudgeContext {
  /** The number of this attempt, from 1. */
  attempt: number;
  /** What the earlier attempts established. */
  history: AttemptHistory;
  acceptedAt: number;
  now: number;
  policy: RetryPolicy;
  random?: () => number;
}

/**
 * Turns a transport's report into the message's next state. A message is `sent` once no recipient
 * is left to try and at least one accepted it (error_code then names any who were refused);
 * `failed` when every recipient was refused, or retrying stopped before anyone accepted it;
 * otherwise it goes back to `queued` for the recipients that were deferred.
 */
export function judge(report: SendReport, context: JudgeContext): Verdict {
  const current = report.recipients;
  const deferred = current.filter((r) => r.state === "deferred");
  const settled = [...context.history.settled, ...current.filter((r) => r.state !== "deferred")];
  const accepted = settled.filter((r) => r.state === "accepted");
  const refused = settled.filter((r) => r.state === "rejected");
  const attemptFailure = failureOf(report);
  const outcome = outcomeOf(current);

  // No recipient at all to judge means the attempt failed before reaching the transport: retry it.
  const retrying = deferred.length > 0 || (current.length === 0 && report.failure !== null);
  if (!retrying) {
    if (accepted.length === 0) {
      const failure = attemptFailure ?? {
        code: DeliveryErrorCodes.MessageRejected,
        message: `The relay refused ${listRecipients(refused)}.`,
      };
      return { outcome, attemptFailure, status: "failed", ...final(failure.code, failure.message) };
    }
    if (refused.length === 0) return { outcome, attemptFailure, status: "sent", ...final(null, null) };
    const message = `Delivered to ${accepted.length} of ${accepted.length + refused.length} recipients; the relay refused ${listRecipients(refused)}.`;
    return {
      outcome,
      attemptFailure,
      status: "sent",
      ...final(DeliveryErrorCodes.RecipientsRejected, message),
    };
  }

  // Some recipients were deferred: retry them, unless the limits say stop.
  const failure = attemptFailure ?? deferral(deferred);
  const counted = context.history.counted + (countsTowardLimit(failure.code) ? 1 : 0);
  const decision = nextRetry(
    context.attempt,
    counted,
    context.acceptedAt,
    context.now,
    context.policy,
    context.random,
  );
  if ("retryAt" in decision) {
    // Recipients waiting for their domain's rate or back-off come back when it ends, not after the backoff.
    const retryAt =
      report.waitUntil === undefined
        ? decision.retryAt
        : Math.min(Math.max(report.waitUntil, context.now), context.acceptedAt + context.policy.maxAgeMs);
    return {
      outcome,
      attemptFailure,
      status: "queued",
      errorCode: failure.code,
      errorMessage: `${failure.message} Attempt ${context.attempt} failed temporarily; the next one is at ${new Date(retryAt).toISOString()}.`,
      retryAt,
    };
  }
  const why =
    decision.giveUp === "attempts"
      ? `Gave up after ${counted} attempts that reached the relay (MAILROOM_MAX_ATTEMPTS is ${context.policy.maxAttempts}).`
      : `Gave up: the message is older than MAILROOM_MAX_AGE_MS (${context.policy.maxAgeMs} ms).`;
  const partly =
    accepted.length > 0
      ? ` It was delivered to ${accepted.length} of ${accepted.length + refused.length + deferred.length} recipients; not to ${listRecipients([...refused, ...deferred])}.`
      : "";
  return {
    outcome,
    attemptFailure,
    status: accepted.length > 0 ? "sent" : "failed",
    ...final(
      decision.giveUp === "attempts"
        ? DeliveryErrorCodes.AttemptsExhausted
        : DeliveryErrorCodes.MessageExpired,
      `${why} Last failure: ${failure.message}${partly}`,
    ),
  };
}

function final(errorCode: number | null, errorMessage: string | null) {
  return { errorCode, errorMessage, retryAt: null };
}

function outcomeOf(recipients: readonly RecipientOutcome[]): AttemptOutcome {
  const accepted = recipients.filter((r) => r.state === "accepted").length;
  if (accepted === recipients.length) return "accepted";
  if (accepted > 0) return "partial";
  return recipients.some((r) => r.state === "deferred") ? "deferred" : "rejected";
}

/** The attempt's failure: the transport's whole-message cause, or else a summary of the refused recipients. */
function failureOf(report: SendReport): SendFailure | null {
  if (report.failure) return report.failure;
  const notAccepted = report.recipients.filter((r) => r.state !== "accepted");
  if (notAccepted.length === 0) return null;
  const deferred = notAccepted.filter((r) => r.state === "deferred");
  if (deferred.length > 0) return deferral(deferred);
  const someAccepted = notAccepted.length < report.recipients.length;
  return {
    code: someAccepted ? DeliveryErrorCodes.RecipientsRejected : DeliveryErrorCodes.MessageRejected,
    message: `The relay refused ${listRecipients(notAccepted)}. Retrying will not help; check ${
      notAccepted.length === 1 ? "that address" : "those addresses"
    }.`,
  };
}

function deferral(deferred: readonly RecipientOutcome[]): SendFailure {
  return {
    code: DeliveryErrorCodes.MessageDeferred,
    message: `The relay deferred ${listRecipients(deferred)}.`,
  };
}

const LISTED = 5;

/** `a@x.example ("550 5.1.1 No such user"), …, and 3 more`: enough to act on, bounded in length. */
function listRecipients(recipients: readonly RecipientOutcome[]): string {
  const shown = recipients.slice(0, LISTED).map((r) => {
    const reply = r.response ? ` ("${r.response.replace(/\s*[\r\n]+\s*/g, " ").trim()}")` : "";
    return `${r.address}${reply}`;
  });
  const more = recipients.length > LISTED ? `, and ${recipients.length - LISTED} more` : "";
  return shown.join(", ") + more;
}
