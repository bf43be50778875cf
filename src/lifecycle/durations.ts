/**
 * Retention periods and the purge interval as people write them: a whole number and one unit,
 * `d` (days), `h` (hours), `m` (minutes) or `s` (seconds): `30d`, `12h`, `90s`. One unit only, so a
 * value reads one way (no `1d12h`, no months: their length varies).
 */
const UNITS = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1000 } as const;
const DURATION = /^(\d{1,9})([dhms])$/;

/** The longest period accepted: 100 years (a longer one means "forever", which the default already nearly is). */
export const MAX_DURATION_MS = 36_500 * UNITS.d;

/** The milliseconds of `text`, or undefined when it is not a duration (or is 0, or beyond MAX_DURATION_MS). */
export function parseDuration(text: string): number | undefined {
  const match = DURATION.exec(text.trim());
  if (!match) return undefined;
  const ms = Number(match[1]) * UNITS[match[2] as keyof typeof UNITS];
  return ms > 0 && ms <= MAX_DURATION_MS ? ms : undefined;
}

/** `ms` in the largest unit that divides it (`2592000000` → `30d`); a value that no unit divides, in seconds rounded up. */
export function formatDuration(ms: number): string {
  for (const [unit, size] of Object.entries(UNITS)) {
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${Math.ceil(ms / UNITS.s)}s`;
}

export const DURATION_FORMS =
  "a whole number and a unit: d (days), h (hours), m (minutes) or s (seconds), e.g. 30d, 12h, 90s";
