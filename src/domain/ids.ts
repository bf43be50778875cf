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
  | "RP";

/**
 * The 32 hex characters are 12 of the creation time in milliseconds, then 20 random (80 bits).
 * Time first keeps the primary-key indexes append-mostly: random keys spread every batch of inserts
 * over random index pages, and the store writes each touched page to its log at every commit (the
 * measurement that led here: 22 page writes per delivered message on SQLite, see docs/performance.md).
 */
export function newSid(prefix: SidPrefix, now = Date.now()): string {
  return prefix + now.toString(16).padStart(12, "0") + randomHex(SID_RANDOM_BYTES);
}

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
