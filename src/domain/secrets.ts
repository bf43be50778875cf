import crypto, { createHash, randomBytes, scrypt, timingSafeEqual } from "node:crypto";
import { availableParallelism } from "node:os";
import { promisify } from "node:util";

/**
 * AuthTokens carry 128 random bits, so one SHA-256 is enough to store them safely and keeps the
 * check on every request cheap. Passwords are chosen by people and get a slow, salted scrypt.
 */
export function hashAuthToken(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

// A stand-in compared against when the account does not exist, so both paths take the same time.
const ABSENT_HASH = hashAuthToken(randomBytes(16).toString("hex"));

/**
 * The SHA-256 of a token, as bytes. crypto.hash (Node 20.12 and later; a namespace lookup, since a named
 * import would fail to load on older ones) digests in one call without a Hash object or a hex round
 * trip: this check runs on every request.
 */
const sha256: (text: string) => Buffer =
  typeof crypto.hash === "function"
    ? (text) => crypto.hash("sha256", text, "buffer")
    : (text) => createHash("sha256").update(text, "utf8").digest();

// The stored hash last compared against, decoded: under load most requests carry one account's token.
let lastHash = "";
let lastHashBytes = Buffer.alloc(0);

export function authTokenMatches(token: string, storedHash: string | undefined): boolean {
  const stored = storedHash ?? ABSENT_HASH;
  if (stored !== lastHash) {
    lastHashBytes = Buffer.from(stored, "hex");
    lastHash = stored;
  }
  return timingSafeEqual(sha256(token), lastHashBytes) && storedHash !== undefined;
}

/** Longer passwords are refused: scrypt's cost grows with the input, and no person types 1 KiB. */
export const MAX_PASSWORD_BYTES = 1024;

const scryptAsync = promisify(scrypt) as (password: string, salt: Buffer, keylen: number) => Promise<Buffer>;

/**
 * scrypt takes ~50 ms of CPU: run synchronously it stalled every request for that long. The async
 * form runs in libuv's thread pool, at most one per two cores at once: the pool (four threads by
 * default) keeps room for DNS lookups and file I/O, and the cores for the threads that serve requests.
 * Passwords change rarely; a burst of changes waits its turn rather than slow everything else.
 */
const HASHES_AT_ONCE = Math.max(1, Math.floor(availableParallelism() / 2));
let hashing = 0;
const waiting: Array<() => void> = [];

export async function hashPassword(password: string): Promise<string> {
  if (hashing >= HASHES_AT_ONCE) await new Promise<void>((resolve) => waiting.push(resolve));
  else hashing += 1;
  try {
    const salt = randomBytes(16);
    const hash = await scryptAsync(password, salt, 32);
    return `scrypt$${salt.toString("hex")}$${hash.toString("hex")}`;
  } finally {
    // Hand the slot straight to the next waiter (the count stays), or free it.
    const next = waiting.shift();
    if (next) next();
    else hashing -= 1;
  }
}
