/**
 * Per-destination pacing for direct-to-MX delivery, kept in the delivery thread (one per process):
 *
 * - a rate per recipient domain (MAILROOM_DOMAIN_RATES, e.g. `gmail.com=600/h`): transactions are
 *   spaced evenly (one every period/count, the generic cell rate algorithm without a burst). A message
 *   over the rate is given the next free slot and told to come back then; the slot is kept for it (by
 *   its key, the message SID), so it is not pushed back again by messages that arrived after it.
 * - a back-off per domain after a reply that means "slow down" (421, or 451 with an enhanced status
 *   4.7.x): the whole domain waits, not just the message that got the reply; the wait doubles while
 *   the domain keeps saying so and ends with the first message it takes.
 *
 * - a warm-up schedule per recipient domain (MAILROOM_DOMAIN_WARMUP, warmup.ts): an allowance per
 *   step; over it, a message waits for its place in a later step. With a rate as well, both must let a message
 *   through, so the stricter one is what holds it back.
 *
 * Waiting is never a failure: the caller defers the recipients and retries at the time given.
 */
import { WarmupCounters, type WarmupSchedule } from "./warmup.js";

/** A rate as MAILROOM_DOMAIN_RATES gives it: `count` messages per `periodMs`. */
export interface DomainRate {
  domain: string;
  count: number;
  periodMs: number;
}

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Reads `domain=count/unit` (unit s, m, h or d); throws an Error that says what is wrong. */
export function parseDomainRate(text: string): DomainRate {
  const match = /^\s*([A-Za-z0-9.-]+)\s*=\s*(\d{1,9})\s*\/\s*([smhd])\s*$/.exec(text);
  const count = Number(match?.[2]);
  if (!match || count < 1) {
    throw new Error(
      `expected domain=count/unit (unit s, m, h or d), e.g. gmail.com=600/h; got "${text.trim()}"`,
    );
  }
  return {
    domain: (match[1] as string).toLowerCase().replace(/\.$/, ""),
    count,
    periodMs: UNITS[match[3] as string] as number,
  };
}

/** The longest back-off a domain gets, however often it says "slow down". */
const MAX_BACKOFF_MS = 3_600_000;
/** A slot not taken this long after its time is forgotten (its message went elsewhere, or expired). */
const SLOT_GRACE_MS = 600_000;

interface Pace {
  intervalMs: number;
  /** When the next transaction may start (the "theoretical arrival time"). */
  next: number;
  /** Slots handed out to messages that were told to wait, by message key. */
  slots: Map<string, number>;
}

interface Backoff {
  until: number;
  lengthMs: number;
}

export type Admission =
  | { go: true }
  | { go: false; until: number; why: "rate" | "backoff" }
  | { go: false; until: number; why: "warmup"; allowance: number };

const GO: Admission = { go: true };

export class DomainGate {
  private readonly paces = new Map<string, Pace>();
  private readonly backoffs = new Map<string, Backoff>();
  private readonly warmup: WarmupCounters;

  constructor(
    rates: readonly DomainRate[],
    private readonly backoffMs: number,
    private readonly clock: () => number = Date.now,
    warmups: readonly WarmupSchedule[] = [],
  ) {
    this.warmup = new WarmupCounters(warmups);
    for (const rate of rates) {
      this.paces.set(rate.domain, {
        intervalMs: rate.periodMs / rate.count,
        next: 0,
        slots: new Map(),
      });
    }
  }

  /** May a message (`key`) go to `domain` now? Otherwise: until when it waits, and why. */
  admit(domain: string, key: string): Admission {
    const now = this.clock();
    const backoff = this.backoffs.get(domain);
    if (backoff && backoff.until > now) return { go: false, until: backoff.until, why: "backoff" };
    if (!this.warmup.active) return this.pace(domain, key, now);
    // The warm-up is asked first and counts only what the rate lets through too: a message held
    // back by one does not use up the other's allowance.
    const warm = this.warmup.check(domain, key, now);
    if (!warm.go) return { go: false, until: warm.until, why: "warmup", allowance: warm.allowance };
    const paced = this.pace(domain, key, now);
    if (paced.go) this.warmup.took(domain, key, now);
    return paced;
  }

  private pace(domain: string, key: string, now: number): Admission {
    const pace = this.paces.get(domain);
    if (pace === undefined) return GO;
    const slot = pace.slots.get(key);
    if (slot !== undefined) {
      if (slot > now) return { go: false, until: slot, why: "rate" };
      pace.slots.delete(key);
      return GO;
    }
    if (pace.next <= now) {
      pace.next = now + pace.intervalMs;
      return GO;
    }
    const until = pace.next;
    pace.next += pace.intervalMs;
    this.forgetOld(pace, now);
    pace.slots.set(key, until);
    return { go: false, until, why: "rate" };
  }

  /** The domain said "slow down": it waits as a whole; a repeat doubles the wait. Returns its end. */
  slowDown(domain: string): number {
    const now = this.clock();
    const previous = this.backoffs.get(domain);
    const lengthMs = previous ? Math.min(previous.lengthMs * 2, MAX_BACKOFF_MS) : this.backoffMs;
    const until = now + lengthMs;
    this.backoffs.set(domain, { until, lengthMs });
    return until;
  }

  /** The domain took a message: its back-off is over. */
  tookOne(domain: string): void {
    if (this.backoffs.size > 0) this.backoffs.delete(domain);
  }

  private forgetOld(pace: Pace, now: number): void {
    if (pace.slots.size < 1000) return;
    for (const [key, slot] of pace.slots) if (slot < now - SLOT_GRACE_MS) pace.slots.delete(key);
  }
}

/** 421 (closing, busy), or 451 with an enhanced status 4.7.x (RFC 3463: policy, e.g. rate limited). */
export function meansSlowDown(code: number | null, response: string | null): boolean {
  if (code === 421) return true;
  return code === 451 && response !== null && /^451[ -]4\.7\.\d{1,3}\b/.test(response);
}

/** Reads `domain=count` (MAILROOM_DOMAIN_CONNECTIONS); throws an Error that says what is wrong. */
export function parseDomainLimit(text: string): { domain: string; connections: number } {
  const match = /^\s*([A-Za-z0-9.-]+)\s*=\s*(\d{1,4})\s*$/.exec(text);
  const connections = Number(match?.[2]);
  if (!match || connections < 1) {
    throw new Error(`expected domain=connections, e.g. example.com=2; got "${text.trim()}"`);
  }
  return { domain: (match[1] as string).toLowerCase().replace(/\.$/, ""), connections };
}

/**
 * At most `connections` transactions at once to a domain (MAILROOM_DOMAIN_CONNECTIONS), across its MX
 * hosts, for receivers that count connections per sender; the pools' per-host limit applies as well.
 * Transactions over it wait here, in order, in the delivery thread.
 */
export class DomainConnections {
  private readonly limits: Map<string, number>;
  private readonly busy = new Map<string, number>();
  private readonly waiting = new Map<string, Array<() => void>>();

  constructor(limits: ReadonlyArray<{ domain: string; connections: number }>) {
    this.limits = new Map(limits.map((l) => [l.domain, l.connections]));
  }

  /** Resolves when the domain has room; call the returned function when the transaction is over. */
  enter(domain: string): Promise<() => void> | (() => void) {
    const limit = this.limits.get(domain);
    if (limit === undefined) return NOTHING;
    const busy = this.busy.get(domain) ?? 0;
    if (busy < limit) {
      this.busy.set(domain, busy + 1);
      return () => this.leave(domain);
    }
    return new Promise((resolve) => {
      const queue = this.waiting.get(domain) ?? [];
      queue.push(() => resolve(() => this.leave(domain)));
      this.waiting.set(domain, queue);
    });
  }

  private leave(domain: string): void {
    const next = this.waiting.get(domain)?.shift();
    // The room passes straight to the next waiting transaction.
    if (next) next();
    else this.busy.set(domain, (this.busy.get(domain) ?? 1) - 1);
  }
}

const NOTHING = () => {};
