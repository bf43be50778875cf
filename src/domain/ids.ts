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
  return prefix + now.toString(16).padStart(12, "0") + randomHex(SID_RANDOM_BYTES);
}

/**
 * A SID that sorts after every other this process made with `newOrderedSid` (for any prefix): in the
 * same millisecond (or if the clock stepped back) it takes the last one's time and random part plus one,
 * as ULID's monotonic mode does. Events are listed in SID order, and one attempt writes several in
 * the same millisecond: their order must be the order they happened in.
 */
export function newOrderedSid(prefix: SidPrefix, now = Date.now()): string {
  if (now > lastOrdered.time) {
    lastOrdered = { time: now, random: BigInt(`0x${randomHex(SID_RANDOM_BYTES)}`) >> 1n };
  } else {
    lastOrdered.random += 1n;
  }
  return (
    prefix +
    lastOrdered.time.toString(16).padStart(12, "0") +
    lastOrdered.random.toString(16).padStart(20, "0")
  );
}

// Half the random range is left above the first SID of a millisecond, so incrementing cannot overflow.
let lastOrdered = { time: 0, random: 0n };

const SID_RANDOM_BYTES = 10;
// Random bytes drawn in bulk: one getrandom call per 409 SIDs rather than one per SID.
const pool = Buffer.alloc(4096);
let poolOffset = pool.length;

function randomHex(bytes: number): string {
  if (poolOffset + bytes > pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  poolOffset += bytes;
  return pool.toString("hex", poolOffset - bytes, poolOffset);
}

const SID_PATTERN = /^[A-Z]{2}[0-9a-f]{32}$/;

export function isSid(value: string, prefix: SidPrefix): boolean {
  return value.startsWith(prefix) && SID_PATTERN.test(value);
}

/** A fresh AuthToken: 128 random bits, shown once to the caller and stored only as a hash. */
export function newAuthToken(): string {
  return randomBytes(16).toString("hex");
}
