const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** Restcomm's list and account dates: RFC 2822 in UTC, e.g. `Wed, 5 Feb 2014 10:12:32 +0000`. */
export function rfc2822(ms: number): string {
  const d = new Date(ms);
  const time = [d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds()]
    .map((n) => String(n).padStart(2, "0"))
    .join(":");
  return `${DAYS[d.getUTCDay()]}, ${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ${time} +0000`;
}

/** Restcomm's Email `date_sent`: ISO 8601 with milliseconds, e.g. `2016-02-07T23:54:41.293Z`. */
export function iso8601(ms: number): string {
  return new Date(ms).toISOString();
}

/** A StartTime/EndTime filter: `yyyy-MM-dd` (a whole UTC day) or a full ISO 8601 date-time. */
export function parseFilterDate(text: string): { start: number; end: number } | undefined {
  if (/^\d{4}-\d{2}-\d{2}$/.test(text)) {
    const start = Date.parse(`${text}T00:00:00Z`);
    // Date.parse rolls 2024-02-30 over to March 1st; a date that does not exist is refused instead.
    if (Number.isNaN(start) || new Date(start).toISOString().slice(0, 10) !== text) return undefined;
    return { start, end: start + 86_400_000 };
  }
  if (!/^\d{4}-\d{2}-\d{2}T/.test(text)) return undefined;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : { start: at, end: at + 1 };
}
