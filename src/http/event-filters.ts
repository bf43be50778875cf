import { ApiError, type ErrorKind } from "../domain/errors.js";
import { containsControl, describeUnsafeCharacter } from "../domain/header-rules.js";
import { quoteInput } from "../domain/quote.js";
import { parseEventTypeList } from "../events/type-list.js";
import { EVENT_TYPES } from "../events/types.js";
import { parseFilterDate } from "./dates.js";

/**
 * The parameters the Events list and the replay by time range share: a text given once, a time
 * range (StartTime, EndTime) read as the message list reads it, and a list of event types.
 */

/** `source[name]` as text, or undefined when absent or empty; refused when repeated or unsafe. */
export function queryText(
  source: unknown,
  name: string,
  kind: ErrorKind = "InvalidFilter",
): string | undefined {
  const value = (source as Record<string, unknown> | undefined)?.[name];
  if (value === undefined || value === null || value === "") return undefined;
  if (typeof value !== "string") throw new ApiError(kind, `${name} must be given once, as text.`);
  if (containsControl(value)) throw new ApiError(kind, `${name} must not contain control characters.`);
  // Filters are echoed in the page's URIs, and XML cannot carry these.
  const unsafe = describeUnsafeCharacter(value);
  if (unsafe !== undefined) throw new ApiError(kind, `${name} contains ${unsafe}.`);
  return value;
}

/**
 * [from, before) of StartTime (its start) and EndTime (the end of it: a whole day for yyyy-MM-dd),
 * as the message list reads them; each may be absent. An EndTime at or before StartTime is refused.
 */
export function timeRange(
  kind: ErrorKind,
  start: string | undefined,
  end: string | undefined,
): { from: number | undefined; before: number | undefined } {
  const from = start === undefined ? undefined : filterDate(kind, "StartTime", start).start;
  const before = end === undefined ? undefined : filterDate(kind, "EndTime", end).end;
  if (from !== undefined && before !== undefined && before <= from) {
    throw new ApiError(
      kind,
      `EndTime ${quoteInput(end ?? "")} is not after StartTime ${quoteInput(start ?? "")}.`,
    );
  }
  return { from, before };
}

function filterDate(kind: ErrorKind, name: string, value: string) {
  const parsed = parseFilterDate(value);
  if (!parsed) {
    throw new ApiError(
      kind,
      `${name} ${quoteInput(value)} is not a date; use yyyy-MM-dd or an ISO 8601 date-time.`,
    );
  }
  return parsed;
}

/** A `Type` parameter: comma-separated event types, each known (an unknown one is refused by name). */
export function eventTypeList(kind: ErrorKind, text: string): string[] {
  const types = parseEventTypeList(text, "Type", kind);
  if (types.length === 0)
    throw new ApiError(kind, `Type names no event type; use any of ${EVENT_TYPES.join(", ")}.`);
  return types;
}
