/**
 * DNS answers kept for their TTL, within bounds: a floor (a 0 or 1 s TTL would otherwise mean a lookup
 * per message) and a ceiling (a week-long TTL would keep a moved MX for a week). One set of bounds for
 * MX, address and negative answers alike. Bounded in size: the oldest entry goes first when full.
 */

/** The floor's default (MAILROOM_DNS_MIN_TTL_MS). */
export const DEFAULT_MIN_TTL_MS = 5_000;
/** The ceiling: an answer is asked again after an hour at most, whatever its TTL. */
export const MAX_TTL_MS = 3_600_000;
/** The most names kept. */
export const MAX_ENTRIES = 10_000;

interface Entry<T> {
  value: T;
  expires: number;
}

export class TtlCache<T> {
  private readonly entries = new Map<string, Entry<T>>();

  constructor(
    private readonly clock: () => number,
    private readonly minTtlMs: number = DEFAULT_MIN_TTL_MS,
  ) {}

  /** The value of `key` while its time lasts. */
  get(key: string): T | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expires > this.clock()) return entry.value;
    this.entries.delete(key);
    return undefined;
  }

  /** Keeps `value` for `ttlMs`, brought within the bounds. */
  set(key: string, value: T, ttlMs: number): void {
    const bounded = Math.min(Math.max(ttlMs, this.minTtlMs), MAX_TTL_MS);
    this.entries.delete(key);
    if (this.entries.size >= MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value as string);
    this.entries.set(key, { value, expires: this.clock() + bounded });
  }
}
