import { createHash, randomBytes, scryptSync, timingSafeEqual } from "node:crypto";

/**
 * AuthTokens carry 128 random bits, so one SHA-256 is enough to store them safely and keeps the
 * check on every request cheap. Passwords are chosen by people and get a slow, salted scrypt.
 */
export function hashAuthToken(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

// A stand-in compared against when the account does not exist, so both paths take the same time.
const ABSENT_HASH = hashAuthToken(randomBytes(16).toString("hex"));

export function authTokenMatches(token: string, storedHash: string | undefined): boolean {
  const expected = Buffer.from(storedHash ?? ABSENT_HASH, "hex");
  const actual = Buffer.from(hashAuthToken(token), "hex");
  return timingSafeEqual(actual, expected) && storedHash !== undefined;
}

export function hashPassword(password: string): string {
  const salt = randomBytes(16);
  const hash = scryptSync(password, salt, 32);
  return `scrypt$${salt.toString("hex")}$${hash.toString("hex")}`;
}
