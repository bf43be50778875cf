/**
 * Throttling of failed authentications, per client address and per user name, in memory (each
 * process counts its own). After `maxFailures` failures within `windowMs`, an address is refused for
 * `addressLockoutMs`, whatever credentials it sends; a user name is refused for `userLockoutMs`, but
 * only from addresses that have not authenticated as it lately. So an attacker is slowed down from
 * every address, while the real user's established clients keep working even while someone else
 * fails with their name, and a new client of theirs waits at most the short user lockout.
 *
 * Every map is bounded: an attacker cycling names or addresses makes the oldest records fall out
 * rather than memory grow. The success path costs one or two map lookups.
 */
export interface AuthThrottleSettings {
  /** Failures allowed within the window before a lockout; 0 turns throttling off. */
  maxFailures: number;
  windowMs: number;
  addressLockoutMs: number;
  userLockoutMs: number;
}

/** Records kept per map; beyond this the oldest go first. About 100 bytes each. */
const MAX_ENTRIES = 50_000;
/** How long a successful authentication exempts its address from that user name's lockout. */
const TRUSTED_MS = 24 * 60 * 60 * 1000;
/** A trusted pair is written again only when its mark is this old: most successes write nothing. */
const TRUST_REFRESH_MS = 60 * 1000;

export class AuthThrottle {
  private readonly addresses: FailureCounter;
  private readonly users: FailureCounter;
  /** `user address` → until when that address is trusted for that user name. */
  private readonly trusted = new Map<string, number>();
  private readonly maxTrusted: number;
  private readonly enabled: boolean;

  constructor(settings: AuthThrottleSettings, maxEntries = MAX_ENTRIES) {
    this.enabled = settings.maxFailures > 0;
    this.addresses = new FailureCounter(
      settings.maxFailures,
      settings.windowMs,
      settings.addressLockoutMs,
      maxEntries,
    );
    this.users = new FailureCounter(
      settings.maxFailures,
      settings.windowMs,
      settings.userLockoutMs,
      maxEntries,
    );
    this.maxTrusted = maxEntries;
  }

  /** Milliseconds until `address` may try again (0: now). Checked before the credentials are read. */
  addressWait(address: string, now: number): number {
    return this.enabled ? this.addresses.wait(addressKey(address), now) : 0;
  }

  /** Milliseconds until `user` may be tried again from `address` (0: now). */
  userWait(user: string, address: string, now: number): number {
    if (!this.enabled) return 0;
    const wait = this.users.wait(userKey(user), now);
    if (wait === 0) return 0;
    const trustedUntil = this.trusted.get(pairKey(user, address));
    return trustedUntil !== undefined && trustedUntil > now ? 0 : wait;
  }

  failed(user: string, address: string, now: number): void {
    if (!this.enabled) return;
    this.addresses.fail(addressKey(address), now);
    this.users.fail(userKey(user), now);
  }

  succeeded(user: string, address: string, now: number): void {
    if (!this.enabled) return;
    const key = pairKey(user, address);
    const until = this.trusted.get(key);
    if (until !== undefined && until - TRUSTED_MS + TRUST_REFRESH_MS > now) return;
    this.trusted.delete(key);
    this.trusted.set(key, now + TRUSTED_MS);
    if (this.trusted.size > this.maxTrusted) this.trusted.delete(this.trusted.keys().next().value as string);
  }

  /** How many records the throttle holds (for tests of its bound). */
  get size(): number {
    return this.addresses.size + this.users.size + this.trusted.size;
  }
}

interface FailureRecord {
  failures: number;
  windowStart: number;
  lockedUntil: number;
}

/** Failures per key in a fixed window; reaching the limit locks the key out and starts over. */
class FailureCounter {
  /** In order of each key's latest failure, so the first is the one to drop when full. */
  private readonly records = new Map<string, FailureRecord>();

  constructor(
    private readonly maxFailures: number,
    private readonly windowMs: number,
    private readonly lockoutMs: number,
    private readonly maxEntries: number,
  ) {}

  get size(): number {
    return this.records.size;
  }

  wait(key: string, now: number): number {
    const record = this.records.get(key);
    return record !== undefined && record.lockedUntil > now ? record.lockedUntil - now : 0;
  }

  fail(key: string, now: number): void {
    const previous = this.records.get(key);
    const record =
      previous !== undefined && now - previous.windowStart < this.windowMs
        ? previous
        : { failures: 0, windowStart: now, lockedUntil: previous?.lockedUntil ?? 0 };
    record.failures += 1;
    if (record.failures >= this.maxFailures) {
      record.lockedUntil = now + this.lockoutMs;
      record.failures = 0;
      record.windowStart = now;
    }
    this.records.delete(key);
    this.records.set(key, record);
    if (this.records.size > this.maxEntries) this.records.delete(this.records.keys().next().value as string);
  }
}

function userKey(user: string): string {
  // As accounts are looked up: emails in any case are one name.
  return user.includes("@") ? user.toLowerCase() : user;
}

function pairKey(user: string, address: string): string {
  return `${userKey(user)} ${addressKey(address)}`;
}

/**
 * IPv4 addresses count one by one; IPv6 ones by their /64, the block one subscriber (and one
 * attacker) normally holds whole. IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) count as IPv4.
 */
export function addressKey(address: string): string {
  if (!address.includes(":")) return address;
  const bare = address.replace(/%.*$/, "").toLowerCase();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(bare);
  if (mapped?.[1]) return mapped[1];
  const [head = "", tail] = bare.split("::");
  const headGroups = head === "" ? [] : head.split(":");
  const tailGroups = tail === undefined || tail === "" ? [] : tail.split(":");
  const zeros =
    tail === undefined ? [] : Array(Math.max(0, 8 - headGroups.length - tailGroups.length)).fill("0");
  const groups = [...headGroups, ...zeros, ...tailGroups].slice(0, 4);
  return `${groups.map((group) => group.replace(/^0+(?=.)/, "")).join(":")}::/64`;
}
