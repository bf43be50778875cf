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

/** Counts kept at most; beyond it, those of steps already over are forgotten. */
const MAX_COUNTS = 10_000;

/** Messages sent per domain in its current step, against its schedule's allowance. */
export class WarmupCounters {
  private readonly schedules = new Map<string, WarmupSchedule>();
  private readonly counts = new Map<string, { endsAt: number; sent: number }>();

  constructor(schedules: readonly WarmupSchedule[]) {
    for (const schedule of schedules) this.schedules.set(schedule.domain, schedule);
  }

  /** Whether any schedule is set (no work at all otherwise). */
  get active(): boolean {
    return this.schedules.size > 0;
  }

  /** When the domain's step ends if its allowance is used up, with that allowance; else undefined. */
  full(domain: string, now: number): { until: number; allowance: number } | undefined {
    const step = this.stepOf(domain, now);
    if (step === undefined) return undefined;
    const count = this.counts.get(domain);
    const sent = count !== undefined && count.endsAt === step.endsAt ? count.sent : 0;
    return sent < step.allowance ? undefined : { until: step.endsAt, allowance: step.allowance };
  }

  /** A message (transaction) to the domain was let through now. */
  count(domain: string, now: number): void {
    const step = this.stepOf(domain, now);
    if (step === undefined) return;
    const count = this.counts.get(domain);
    if (count !== undefined && count.endsAt === step.endsAt) {
      count.sent++;
      return;
    }
    if (this.counts.size >= MAX_COUNTS) {
      for (const [name, old] of this.counts) if (old.endsAt <= now) this.counts.delete(name);
    }
    this.counts.set(domain, { endsAt: step.endsAt, sent: 1 });
  }

  private stepOf(domain: string, now: number) {
    const schedule = this.schedules.get(domain) ?? this.schedules.get("*");
    return schedule === undefined ? undefined : stepAt(schedule, now);
  }
}
