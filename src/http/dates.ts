const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

// A message's answer shows three dates of the same second, and under load every answer of that second
// does too: the last second formatted is kept (a Date and five strings less per date).
let lastSecond = Number.NaN;
let lastText = "";

/** Restcomm's list and account dates: RFC 2822 in UTC, e.g. `Wed, 5 Feb 2014 10:12:32 +0000`. */
export function rfc2822(ms: number): string {
  const second = Math.floor(ms / 1000);
  if (second !== lastSecond) {
    lastText = formatRfc2822(second * 1000);
    lastSecond = second;
  }
  return lastText;
}

function formatRfc2822(ms: number): string {
  const d = new Date(ms);
  const time = [d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds()]
    .map((n) => String(n).padStart(2, "0"))
    .join(":");
  return `${DAYS[d.getUTCDay()]}, ${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ${time} +0000`;
}

// The same for ISO 8601: the text up to the second is kept, the milliseconds appended (toISOString
// cost about 9,000 instructions a call, and every send's answer has one).
let isoSecond = Number.NaN;
let isoPrefix = "";

/** Restcomm's Email `date_sent`: ISO 8601 with milliseconds, e.g. `2016-02-07T23:54:41.293Z`. */
export function iso8601(ms: number): string {
  const second = Math.floor(ms / 1000);
  // Whole milliseconds between years 0 and 9999 only; anything else as toISOString writes it.
  if (!Number.isInteger(ms) || ms < MIN_ISO_MS || ms > MAX_ISO_MS) return new Date(ms).toISOString();
  if (second !== isoSecond) {
    // `2016-02-07T23:54:41.` of `2016-02-07T23:54:41.000Z`.
    isoPrefix = new Date(second * 1000).toISOString().slice(0, 20);
    isoSecond = second;
  }
  const millis = ms - second * 1000;
  return `${isoPrefix}${millis < 10 ? "00" : millis < 100 ? "0" : ""}${millis}Z`;
}

/** 0000-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z: toISOString writes four-digit years between. */
const MIN_ISO_MS = -62_167_219_200_000;
const MAX_ISO_MS = 253_402_300_799_999;

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
