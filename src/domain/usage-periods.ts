/**
 * The calendar of Usage Records: UTC days as `yyyy-MM-dd` text (what `usage_counters.day` holds, so
 * ranges compare as text on both databases), the dates a request may give, the fixed ranges of the
 * Today/Yesterday/ThisMonth/LastMonth subresources, and how per-day counts become one record per
 * period. Pure functions: "today" is always passed in, so tests need no clock.
 */

/** A UTC calendar day, `yyyy-MM-dd`. */
export type Day = string;

/** Both ends included, as Restcomm's and Twilio's StartDate and EndDate are. */
export interface DayRange {
  start: Day;
  end: Day;
}

export type Granularity = "daily" | "monthly" | "yearly" | "all";

/** The subresources whose range is fixed by today's date; they take no StartDate or EndDate. */
export type FixedRange = "today" | "yesterday" | "this-month" | "last-month";

const DAY_MS = 86_400_000;
const DAY_PATTERN = /^\d{4}-\d{2}-\d{2}$/;
/**
 * An offset from today, as Twilio documents (`-30days`, `+30days`). A `+` written unescaped in a
 * query string arrives as a space (form encoding), so a leading space is read as `+`.
 */
const OFFSET_PATTERN = /^([+\- ])(\d{1,5})days?$/;

/** The UTC day of a time in milliseconds. */
export function utcDay(ms: number): Day {
  return new Date(ms).toISOString().slice(0, 10);
}

function startOf(day: Day): number {
  return Date.parse(`${day}T00:00:00Z`);
}

/** A day that exists (`2024-02-30` does not: Date.parse would roll it over to March), else undefined. */
export function parseDay(text: string): Day | undefined {
  if (!DAY_PATTERN.test(text)) return undefined;
  const ms = startOf(text);
  return Number.isNaN(ms) || utcDay(ms) !== text ? undefined : text;
}

export function addDays(day: Day, days: number): Day {
  return utcDay(startOf(day) + days * DAY_MS);
}

/**
 * A StartDate or EndDate: `yyyy-MM-dd`, or an offset in days from `today` (`-30days`, `+1days`;
 * `day` for one is accepted too). Undefined when it is neither, or lands outside years 0000–9999.
 */
export function parseUsageDate(text: string, today: Day): Day | undefined {
  const offset = OFFSET_PATTERN.exec(text);
  if (!offset) return parseDay(text);
  const days = Number(offset[2]) * (offset[1] === "-" ? -1 : 1);
  const ms = startOf(today) + days * DAY_MS;
  // Beyond year 9999 toISOString writes six-digit years, which are not days of this API.
  if (!(ms >= startOf("0000-01-01") && ms <= startOf("9999-12-31"))) return undefined;
  return utcDay(ms);
}

function firstOfMonth(day: Day): Day {
  return `${day.slice(0, 7)}-01`;
}

function lastOfMonth(day: Day): Day {
  // The 28th plus four days is always in the next month; its first day less one is this month's last.
  return addDays(firstOfMonth(addDays(`${day.slice(0, 7)}-28`, 4)), -1);
}

/** The range of a Today/Yesterday/ThisMonth/LastMonth subresource: whole months, as Restcomm's. */
export function fixedRange(which: FixedRange, today: Day): DayRange {
  switch (which) {
    case "today":
      return { start: today, end: today };
    case "yesterday": {
      const yesterday = addDays(today, -1);
      return { start: yesterday, end: yesterday };
    }
    case "this-month":
      return { start: firstOfMonth(today), end: lastOfMonth(today) };
    case "last-month": {
      const inLastMonth = addDays(firstOfMonth(today), -1);
      return { start: firstOfMonth(inLastMonth), end: inLastMonth };
    }
  }
}

/** The period of `granularity` that contains `day`, cut to `range` (so a record counts exactly its dates). */
export function periodOf(day: Day, granularity: Granularity, range: DayRange): DayRange {
  let period: DayRange;
  switch (granularity) {
    case "daily":
      period = { start: day, end: day };
      break;
    case "monthly":
      period = { start: firstOfMonth(day), end: lastOfMonth(day) };
      break;
    case "yearly":
      period = { start: `${day.slice(0, 4)}-01-01`, end: `${day.slice(0, 4)}-12-31` };
      break;
    case "all":
      period = range;
      break;
  }
  return { start: laterDay(period.start, range.start), end: earlierDay(period.end, range.end) };
}

/** Days compare as text (`yyyy-MM-dd`); Math.min would not take them. */
export function earlierDay(a: Day, b: Day): Day {
  if (a <= b) return a;
  return b;
}

export function laterDay(a: Day, b: Day): Day {
  if (a >= b) return a;
  return b;
}

/** One day's count of one category (the sum over its shards). */
export interface DayCount {
  day: Day;
  category: string;
  count: number;
}

/** What one usage record says: a category's count over a period. */
export interface UsageTotal<C extends string = string> {
  category: C;
  start: Day;
  end: Day;
  count: number;
}

/**
 * Per-day counts as usage records. `all`: one record per category for the whole range, zeros
 * included (how much was sent today is 0, not nothing). `daily`, `monthly`, `yearly`: one record per
 * category for each period in which any of `categories` counted something, oldest first; a period
 * where nothing happened is left out, as Restcomm's grouped query left it out, so a Daily list over an
 * account's whole life is as long as its active days, not its age.
 */
export function summarise<C extends string>(
  counts: readonly DayCount[],
  range: DayRange,
  granularity: Granularity,
  categories: readonly C[],
): UsageTotal<C>[] {
  const periods = new Map<Day, { period: DayRange; counts: Map<string, number> }>();
  if (granularity === "all") periods.set(range.start, { period: range, counts: new Map() });
  const wanted = new Set<string>(categories);
  for (const { day, category, count } of counts) {
    if (day < range.start || day > range.end || count === 0 || !wanted.has(category)) continue;
    const period = periodOf(day, granularity, range);
    let entry = periods.get(period.start);
    if (!entry) {
      entry = { period, counts: new Map() };
      periods.set(period.start, entry);
    }
    entry.counts.set(category, (entry.counts.get(category) ?? 0) + count);
  }
  const ordered = [...periods.values()].sort((a, b) => (a.period.start < b.period.start ? -1 : 1));
  return ordered.flatMap(({ period, counts: byCategory }) =>
    categories.map((category) => ({
      category,
      start: period.start,
      end: period.end,
      count: byCategory.get(category) ?? 0,
    })),
  );
}
