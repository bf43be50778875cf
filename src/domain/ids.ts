import { randomBytes, randomUUID } from "node:crypto";

/** Resource SIDs follow Restcomm: a two-letter prefix and 32 lowercase hex characters. */
export type SidPrefix = "AC" | "EM" | "EA";

export function newSid(prefix: SidPrefix): string {
  return prefix + randomUUID().replaceAll("-", "");
}

const SID_PATTERN = /^[A-Z]{2}[0-9a-f]{32}$/;

export function isSid(value: string, prefix: SidPrefix): boolean {
  return value.startsWith(prefix) && SID_PATTERN.test(value);
}

/** A fresh AuthToken: 128 random bits, shown once to the caller and stored only as a hash. */
export function newAuthToken(): string {
  return randomBytes(16).toString("hex");
}
