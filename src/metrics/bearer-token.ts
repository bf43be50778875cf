import { createHash, timingSafeEqual } from "node:crypto";

export type BearerCheck = "ok" | "missing" | "wrong";

/**
 * Checks `Authorization: Bearer <token>` against the configured token in constant time: both sides
 * are hashed first, so neither the comparison nor its length check tells how much of a guess matched.
 */
export class BearerToken {
  private readonly digest: Buffer;

  constructor(token: string) {
    this.digest = sha256(token);
  }

  check(header: string | undefined): BearerCheck {
    const given = header === undefined ? undefined : /^Bearer +(\S+) *$/i.exec(header)?.[1];
    if (given === undefined) return "missing";
    return timingSafeEqual(sha256(given), this.digest) ? "ok" : "wrong";
  }
}

function sha256(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}
