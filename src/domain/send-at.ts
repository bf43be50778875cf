import { ApiError } from "./errors.js";
import { quoteInput } from "./quote.js";

/** How far ahead a message may be scheduled (issue 14): 30 days. */
export const MAX_SEND_AT_AHEAD_MS = 30 * 86_400_000;
/**
 * A SendAt this little in the past is "now": the caller's clock may be a little behind ours, or the
 * request slow to arrive. Such a message is due at once (its send_at and its email.scheduled event
 * still say what was asked); earlier than that is a mistake worth a 400.
 */
export const SEND_AT_PAST_TOLERANCE_MS = 60_000;

// RFC 3339 / ISO 8601 extended date-time with seconds optional, a fraction of up to nanoseconds, and
// an offset that must be there: without one, "10:00" could be any of 38 local times.
const DATE_TIME =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(?:(Z)|([+-])(\d{2}):?(\d{2}))$/i;

/**
 * The SendAt parameter as milliseconds since the epoch, checked against `now`: an ISO 8601 date-time
 * with an explicit offset (`Z` or `±hh:mm`), at most SEND_AT_PAST_TOLERANCE_MS in the past and at most
 * MAX_SEND_AT_AHEAD_MS ahead. Date.parse is not used: it accepts times without an offset (read as
 * local or UTC depending on the form) and quietly rolls 31 April over to 1 May.
 */
export function parseSendAt(value: string, now: number): number {
  const at = readDateTime(value);
  if (at === undefined) {
    throw new ApiError(
      "InvalidSendAt",
      `SendAt ${quoteInput(value)} is not an ISO 8601 date-time with an offset; send e.g. 2026-05-01T09:30:00Z or 2026-05-01T11:30:00+02:00.`,
    );
  }
  if (at < now - SEND_AT_PAST_TOLERANCE_MS) {
    throw new ApiError(
      "SendAtInPast",
      `SendAt ${quoteInput(value)} is ${describeSpan(now - at)} in the past; give a time from now on (or leave SendAt out to send at once).`,
    );
  }
  if (at > now + MAX_SEND_AT_AHEAD_MS) {
    throw new ApiError(
      "SendAtTooFar",
      `SendAt ${quoteInput(value)} is more than 30 days ahead; schedule it at most 30 days from now (${new Date(now + MAX_SEND_AT_AHEAD_MS).toISOString()}).`,
    );
  }
  return at;
}

/** The instant a date-time names, or undefined if it is not one (bad form, no offset, 30 February). */
function readDateTime(value: string): number | undefined {
  const m = DATE_TIME.exec(value);
  if (!m) return undefined;
  const [year, month, day, hour, minute] = [m[1], m[2], m[3], m[4], m[5]].map(Number) as [
    number,
    number,
    number,
    number,
    number,
  ];
  const second = m[6] === undefined ? 0 : Number(m[6]);
  const millis = m[7] === undefined ? 0 : Number(m[7].slice(0, 3).padEnd(3, "0"));
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return undefined;
  // The last day of that month: day 0 of the next one.
  if (day > new Date(Date.UTC(year, month, 0)).getUTCDate()) return undefined;
  let offsetMinutes = 0;
  if (m[8] === undefined) {
    const [oh, om] = [Number(m[10]), Number(m[11])];
    if (oh > 23 || om > 59) return undefined;
    offsetMinutes = (m[9] === "-" ? -1 : 1) * (oh * 60 + om);
  }
  return Date.UTC(year, month - 1, day, hour, minute, second, millis) - offsetMinutes * 60_000;
}

function describeSpan(ms: number): string {
  const seconds = Math.round(ms / 1000);
  if (seconds < 120) return `${seconds} s`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 120) return `${minutes} min`;
  return `${Math.round(minutes / 60)} h`;
}
