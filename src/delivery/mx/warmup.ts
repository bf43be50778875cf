/**
 * Warm-up schedules for direct-to-MX delivery (MAILROOM_DOMAIN_WARMUP, docs/delivery.md#warm-up): a
 * new sending address earns its reputation by sending little at first and more each day, so each
 * recipient domain (or `*`: every domain without a schedule of its own) gets an allowance per step
 * (a day, an hour, …) that grows with the steps since the schedule's start. Like the rates
 * (domain-gate.ts), the counts live in the process: see the docs for what that means with several.
 */

/** A warm-up schedule as MAILROOM_DOMAIN_WARMUP gives it. */
export interface WarmupSchedule {
  /** A lower-case domain, or `*` for every domain without a schedule of its own. */
  domain: string;
  /** When step 0 begins (ms since the epoch); before it, step 0's allowance applies. */
  startsAt: number;
  /** The length of one step, which is also the period its allowance is for. */
  stepMs: number;
  /** Each step's allowance, in order; after the last step the warm-up is over and no longer limits. */
  steps: readonly number[];
}

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** More steps than a year of hours is a schedule written by mistake (`over 30d` with `/s`). */
const MAX_STEPS = 10_000;

const EXAMPLE =
  "e.g. gmail.com=50/d..10000/d over 30d from 2026-12-01, or *=20,50,100,200/h from 2026-12-01T08:00Z";

const ENTRY = /^\s*(\*|[A-Za-z0-9.-]+)\s*=\s*(.+?)\s+from\s+(\S+)\s*$/;
const RANGE = /^(\d{1,9})\s*\/\s*([smhd])\s*\.\.\s*(\d{1,9})\s*\/\s*([smhd])\s+over\s+(\d{1,6})\s*([smhd])$/;
const LIST = /^(\d{1,9}(?:\s*,\s*\d{1,9})*)\s*\/\s*([smhd])$/;
const START = /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,3})?)?(?:Z|[+-]\d{2}:\d{2}))?$/;

function refuse(text: string, problem: string): never {
  throw new Error(`${problem} in "${text.trim()}"; ${EXAMPLE}`);
}

/**
 * Reads one schedule: `domain=START/unit..END/unit over N unit from DATE` (grows by the same factor
 * each step, from START to END) or `domain=A,B,C/unit from DATE` (the steps as listed). Throws an
 * Error that says what is wrong.
 */
export function parseWarmup(text: string): WarmupSchedule {
  const entry = ENTRY.exec(text);
  if (!entry) return refuse(text, "expected domain=schedule from DATE");
  const [, name, body, start] = entry as unknown as [string, string, string, string];
  const domain = name.toLowerCase().replace(/\.$/, "");
  if (!START.test(start) || Number.isNaN(Date.parse(start))) {
    return refuse(
      text,
      `the start "${start}" is not a date (2026-12-01) or a date-time with a zone (2026-12-01T08:00Z)`,
    );
  }
  const startsAt = Date.parse(start);
  const range = RANGE.exec(body);
  if (range) {
    const [, first, unit, last, lastUnit, length, lengthUnit] = range as unknown as string[];
    if (unit !== lastUnit) return refuse(text, "both ends of a range need the same unit");
    const stepMs = UNITS[unit as string] as number;
    const durationMs = Number(length) * (UNITS[lengthUnit as string] as number);
    if (durationMs < stepMs || durationMs % stepMs !== 0) {
      return refuse(text, `"over" must be a whole number of steps of 1${unit}`);
    }
    const count = durationMs / stepMs;
    if (count > MAX_STEPS) return refuse(text, `${count} steps is more than ${MAX_STEPS}; use a longer unit`);
    const from = Number(first);
    const to = Number(last);
    if (from < 1 || to < from) return refuse(text, "a range goes from at least 1 up to at least its start");
    return { domain, startsAt, stepMs, steps: geometricSteps(from, to, count) };
  }
  const list = LIST.exec(body);
  if (list) {
    const steps = (list[1] as string).split(",").map((item) => Number(item.trim()));
    if (steps.some((step) => step < 1)) return refuse(text, "every step allows at least 1 message");
    if (steps.length > MAX_STEPS) return refuse(text, `more than ${MAX_STEPS} steps`);
    return { domain, startsAt, stepMs: UNITS[list[2] as string] as number, steps };
  }
  return refuse(text, `expected START/unit..END/unit over N unit, or a list A,B,C/unit, not "${body}"`);
}

/**
 * `count` allowances from `from` to `to`, each the previous times the same factor (warm-up plans
 * double or so day by day; a straight line would grow too fast at first and too slowly at the end).
 */
export function geometricSteps(from: number, to: number, count: number): number[] {
  if (count === 1) return [from];
  const factor = to / from;
  return Array.from({ length: count }, (_, step) =>
    step === count - 1 ? to : Math.round(from * factor ** (step / (count - 1))),
  );
}

/** The step in force at `now`: its allowance and when it ends; undefined once the warm-up is over. */
export function stepAt(
  schedule: WarmupSchedule,
  now: number,
): { index: number; allowance: number; endsAt: number } | undefined {
  const index = Math.floor((now - schedule.startsAt) / schedule.stepMs);
  if (index >= schedule.steps.length) return undefined;
  return {
    index,
    // Before the start the first step's allowance holds: a new address is not warm yet.
    allowance: schedule.steps[Math.max(index, 0)] as number,
    endsAt: schedule.startsAt + (index + 1) * schedule.stepMs,
  };
}

/** Schedules already over at `now`: set by mistake, or left from a past warm-up (one line each). */
export function warmupsOver(schedules: readonly WarmupSchedule[], now: number): string[] {
  return schedules
    .filter((schedule) => stepAt(schedule, now) === undefined)
    .map(
      (schedule) =>
        `MAILROOM_DOMAIN_WARMUP: the warm-up of ${schedule.domain} ended on ${new Date(startOf(schedule, schedule.steps.length)).toISOString()}; it no longer limits anything`,
    );
}

/** The allowance of step `index` of a schedule: the first one's before the start, none once over. */
function allowanceOf(schedule: WarmupSchedule, index: number): number {
  if (index >= schedule.steps.length) return Number.POSITIVE_INFINITY;
  return schedule.steps[Math.max(index, 0)] as number;
}

/** What one step of one domain has given out: messages sent, and places kept for waiting ones. */
interface StepCount {
  sent: number;
  booked: number;
}

/** One domain's warm-up state. */
interface DomainSteps {
  schedule: WarmupSchedule;
  /** By step index: the current step and the later ones with places kept. */
  counts: Map<number, StepCount>;
  /** The step each waiting message (by key, its SID) has a place in. */
  bookings: Map<string, number>;
  /** No step before this one (after the current) has a free place left: where a search starts. */
  open: number;
}

/** Domains kept at most; beyond it, those with nothing kept for later are forgotten. */
const MAX_DOMAINS = 10_000;
/** Places kept at most per domain before those of steps already over are swept. */
const MAX_BOOKINGS = 1000;

export type WarmupAnswer = { go: true } | { go: false; until: number; allowance: number };

const GO: WarmupAnswer = { go: true };

/**
 * Each domain's messages per step against its schedule's allowance. A message over the allowance
 * gets a place in the first later step with room, kept for it (by its key, the message SID), so it
 * comes back once, when it can go, and is not pushed back by messages that arrived after it: a
 * backlog spreads over the steps in order instead of every waiting message retrying at each step.
 */
export class WarmupCounters {
  private readonly schedules = new Map<string, WarmupSchedule>();
  private readonly domains = new Map<string, DomainSteps>();

  constructor(schedules: readonly WarmupSchedule[]) {
    for (const schedule of schedules) this.schedules.set(schedule.domain, schedule);
  }

  /** Whether any schedule is set (no work at all otherwise). */
  get active(): boolean {
    return this.schedules.size > 0;
  }

  /**
   * May message `key` go to `domain` now, as far as the warm-up goes? Otherwise it has a place in a
   * later step: until when it waits, and the allowance of the step it missed. Nothing is counted
   * until `took` says it went (a rate may still hold it back).
   */
  check(domain: string, key: string, now: number): WarmupAnswer {
    const state = this.stateOf(domain, now);
    if (state === undefined) return GO;
    const { schedule, counts, bookings } = state;
    const step = stepAt(schedule, now);
    if (step === undefined) return GO;
    const booked = bookings.get(key);
    if (booked !== undefined) {
      if (booked === step.index) return GO;
      if (booked > step.index) {
        return { go: false, until: startOf(schedule, booked), allowance: step.allowance };
      }
      // A place in a step gone by (the message came back late): it waits like a newcomer.
      bookings.delete(key);
    }
    const current = countOf(counts, step.index);
    if (current.sent + current.booked < step.allowance) return GO;
    let index = Math.max(state.open, step.index + 1);
    for (;;) {
      const allowance = allowanceOf(schedule, index);
      if (allowance === Number.POSITIVE_INFINITY) {
        // Every step left is full: it goes when the warm-up is over.
        state.open = index;
        return { go: false, until: startOf(schedule, index), allowance: step.allowance };
      }
      const later = countOf(counts, index);
      if (later.booked < allowance) {
        later.booked++;
        state.open = index;
        this.sweep(state, step.index);
        bookings.set(key, index);
        return { go: false, until: startOf(schedule, index), allowance: step.allowance };
      }
      index++;
    }
  }

  /** Message `key` went to `domain` now: it counts against the step (taking its place, if it had one). */
  took(domain: string, key: string, now: number): void {
    const state = this.domains.get(domain);
    if (state === undefined) return;
    const step = stepAt(state.schedule, now);
    if (step === undefined) return;
    const current = countOf(state.counts, step.index);
    current.sent++;
    if (state.bookings.get(key) === step.index) {
      state.bookings.delete(key);
      current.booked--;
    }
  }

  private stateOf(domain: string, now: number): DomainSteps | undefined {
    const known = this.domains.get(domain);
    if (known !== undefined) {
      this.dropPast(known, now);
      return known;
    }
    const schedule = this.schedules.get(domain) ?? this.schedules.get("*");
    if (schedule === undefined) return undefined;
    if (this.domains.size >= MAX_DOMAINS) this.forgetIdle(now);
    const state: DomainSteps = {
      schedule,
      counts: new Map(),
      bookings: new Map(),
      open: Number.MIN_SAFE_INTEGER,
    };
    this.domains.set(domain, state);
    return state;
  }

  /** Counts of steps already over say nothing any more. */
  private dropPast(state: DomainSteps, now: number): void {
    const step = stepAt(state.schedule, now);
    const index = step?.index ?? state.schedule.steps.length;
    for (const past of state.counts.keys()) if (past < index) state.counts.delete(past);
  }

  /** Places kept in steps gone by are forgotten once there are many (their messages went elsewhere). */
  private sweep(state: DomainSteps, index: number): void {
    if (state.bookings.size < MAX_BOOKINGS) return;
    for (const [key, booked] of state.bookings) if (booked < index) state.bookings.delete(key);
  }

  /** Domains with no place kept for later and no count of the current step. */
  private forgetIdle(now: number): void {
    for (const [domain, state] of this.domains) {
      this.dropPast(state, now);
      if (state.counts.size === 0) this.domains.delete(domain);
    }
  }
}

function countOf(counts: Map<number, StepCount>, index: number): StepCount {
  let count = counts.get(index);
  if (count === undefined) {
    count = { sent: 0, booked: 0 };
    counts.set(index, count);
  }
  return count;
}

function startOf(schedule: WarmupSchedule, index: number): number {
  return schedule.startsAt + index * schedule.stepMs;
}
