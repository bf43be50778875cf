import { randomBytes, randomFillSync } from "node:crypto";

/** Resource SIDs follow Restcomm: a two-letter prefix and 32 lowercase hex characters. */
export type SidPrefix =
  | "AC"
  | "EM"
  | "EA"
  /** an event */
  | "EV"
  /** a Restcomm Notification */
  | "NO"
  /** a webhook */
  | "WH"
  /** one attempt to deliver an event to a webhook */
  | "DL"
  /** a replayed event's delivery job */
  | "RP"
  /** an email template */
  | "ET"
  /** a sending domain */
  | "DM"
  /** an erasure of one address (issue 16) */
  | "ER";

/**
 * The 32 hex characters are 12 of the creation time in milliseconds, then 20 random (80 bits).
 * Time first keeps the primary-key indexes append-mostly: random keys spread every batch of inserts
 * over random index pages, and the store writes each touched page to its log at every commit (the
 * measurement that led here: 22 page writes per delivered message on SQLite, see docs/performance.md).
 */
export function newSid(prefix: SidPrefix, now = Date.now()): string {
  return prefix + timeHex(now) + randomHex(SID_RANDOM_BYTES);
}

/**
 * A time's 12 hex characters, remembered for the last time asked: SIDs come in bursts within one
 * millisecond, and a number's toString(16) beyond 31 bits is V8's slow path (about 1 µs on a busy core).
 */
function timeHex(now: number): string {
  if (now !== lastTime.ms) {
    lastTime.ms = now;
    const high = Math.floor(now / 0x1000000);
    lastTime.hex = hex24(high) + hex24(now - high * 0x1000000);
  }
  return lastTime.hex;
}

/** Six hex characters of a 24-bit integer, by table (no number formatting). */
function hex24(value: number): string {
  return (HEX_BYTE[value >> 16] as string) + HEX_BYTE[(value >> 8) & 0xff] + HEX_BYTE[value & 0xff];
}
const lastTime = { ms: -1, hex: "" };

/**
 * A SID that sorts after every other this process made with `newOrderedSid` (for any prefix): in the
 * same millisecond (or if the clock stepped back) it takes the last one's time and random part plus one,
 * as ULID's monotonic mode does. Events are listed in SID order, and one attempt writes several in
 * the same millisecond: their order must be the order they happened in.
 */
export function newOrderedSid(prefix: SidPrefix, now = Date.now()): string {
  if (now > ordered.time) {
    const at = takeRandom(SID_RANDOM_BYTES);
    pool.copy(ordered.high, 0, at, at + HIGH_BYTES);
    // Half the random range is left above the first SID of a millisecond, so incrementing cannot overflow.
    ordered.high[0] = (ordered.high[0] as number) & 0x7f;
    ordered.time = now;
    ordered.low = pool.readUInt16BE(at + HIGH_BYTES);
    ordered.head = timeHex(now) + hexOf(ordered.high);
  } else if (++ordered.low > 0xffff) {
    ordered.low = 0;
    carryInto(ordered.high);
    ordered.head = timeHex(ordered.time) + hexOf(ordered.high);
  }
  return prefix + ordered.head + HEX_BYTE[ordered.low >> 8] + HEX_BYTE[ordered.low & 0xff];
}

/**
 * The last ordered SID: its time, and its 80 random bits as 64 high ones (bytes) and 16 low ones (a
 * small integer). Within a millisecond only the low part changes (a carry into the high part is rare),
 * so a SID is two table look-ups and a concatenation. A BigInt (parsed, incremented, formatted) and a
 * time formatted with toString(16) per SID cost 3 to 4 times as much (docs/performance.md, tenth round).
 * `head` is the time and the high part in hex, the same for every SID of a millisecond.
 */
const HIGH_BYTES = 8;
const ordered = { time: 0, high: Buffer.alloc(HIGH_BYTES), low: 0, head: "" };
const HEX_BYTE = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, "0"));

/** Bytes in hex, by table. */
function hexOf(bytes: Buffer): string {
  let hex = "";
  for (const byte of bytes) hex += HEX_BYTE[byte];
  return hex;
}

/** Adds one to a big-endian number. */
function carryInto(bytes: Buffer): void {
  for (let i = bytes.length - 1; i >= 0; i--) {
    const byte = (bytes[i] as number) + 1;
    bytes[i] = byte & 0xff;
    if (byte <= 0xff) return;
  }
}

const SID_RANDOM_BYTES = 10;
// Random bytes drawn in bulk: one getrandom call per 409 SIDs rather than one per SID.
const pool = Buffer.alloc(4096);
let poolOffset = pool.length;

function randomHex(bytes: number): string {
  const at = takeRandom(bytes);
  return pool.toString("hex", at, at + bytes);
}

/** Where `bytes` fresh random bytes start in the pool (refilled when they run out). */
function takeRandom(bytes: number): number {
  if (poolOffset + bytes > pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  poolOffset += bytes;
  return poolOffset - bytes;
}

const SID_PATTERN = /^[A-Z]{2}[0-9a-f]{32}$/;

export function isSid(value: string, prefix: SidPrefix): boolean {
  return value.startsWith(prefix) && SID_PATTERN.test(value);
}

/** A fresh AuthToken: 128 random bits, shown once to the caller and stored only as a hash. */
export function newAuthToken(): string {
  return randomBytes(16).toString("hex");
}
