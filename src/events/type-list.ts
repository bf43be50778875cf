import { ApiError, type ErrorKind } from "../domain/errors.js";
import { quoteInput } from "../domain/quote.js";
import { EVENT_TYPES, type EventType, isEventType } from "./types.js";

/**
 * Event types as a client names them (a webhook's `Events`, a list's or a replay's `Type`):
 * comma-separated, spaces around names ignored. Returns each type once, in EVENT_TYPES order; an
 * unknown name is refused with `kind`, naming it and the types there are.
 */
export function parseEventTypeList(text: string, parameter: string, kind: ErrorKind): EventType[] {
  const names = text
    .split(",")
    .map((name) => name.trim())
    .filter((name) => name !== "");
  for (const name of names) {
    if (!isEventType(name)) {
      throw new ApiError(
        kind,
        `${parameter} names ${quoteInput(name)}, which is not an event type; use any of ${EVENT_TYPES.join(", ")} (comma-separated).`,
      );
    }
  }
  return EVENT_TYPES.filter((type) => names.includes(type));
}
