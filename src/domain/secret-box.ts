import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from "node:crypto";

/**
 * Seals small secrets that Mailroom must read back (webhook signing secrets; DKIM keys later), so
 * that a copy of the database alone does not give them away. AES-256-GCM with a random 12-byte IV;
 * the sealed text says which format made it (`v1:`), so the algorithm or key can change later
 * while old rows stay readable.
 *
 * The AES key is derived from the installation's key (MAILROOM_SECRET_KEY or secret.key) with
 * HKDF-SHA256, so a longer key works as well as a 32-byte one and another use of the same key
 * (say, DKIM) can derive a key of its own from a different `info`.
 */
export const SEALED_PREFIX = "v1:";

const IV_BYTES = 12;
const TAG_BYTES = 16;
/** What the sealed text's parts are checked against before decryption is tried. */
const MIN_SEALED_BYTES = IV_BYTES + TAG_BYTES;
export const SECRET_KEY_BYTES = 32;

/** What a sealed text that cannot be opened raises: a wrong key, or the text was changed. */
export class SealedSecretError extends Error {}

export class SecretBox {
  private readonly aesKey: Buffer;
  /** The key of salted hashes (erasure, issue 16): derived apart from the AES key, so neither reveals the other. */
  private readonly hashKey: Buffer;

  /** `key`: the installation's key, at least 32 bytes (see parseSecretKey). */
  constructor(key: Uint8Array) {
    if (key.byteLength < SECRET_KEY_BYTES) throw new Error("a secret key has at least 32 bytes");
    this.aesKey = Buffer.from(hkdfSync("sha256", key, new Uint8Array(0), "mailroom secret-box v1", 32));
    this.hashKey = Buffer.from(hkdfSync("sha256", key, new Uint8Array(0), "mailroom salted-hash v1", 32));
  }

  /**
   * A hash of `text` salted with this installation's key (HMAC-SHA256, hex): the same text always
   * gives the same hash here (counts still work), and nobody without the key can test a guess.
   */
  saltedHash(text: string): string {
    return createHmac("sha256", this.hashKey).update(text, "utf8").digest("hex");
  }

  /**
   * `context` (optional) is bound to the sealed text as associated data: opening it needs the same
   * context, so a sealed value copied to another purpose does not open there.
   */
  seal(plaintext: string, context = ""): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv("aes-256-gcm", this.aesKey, iv);
    cipher.setAAD(Buffer.from(context, "utf8"));
    const body = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
    return SEALED_PREFIX + Buffer.concat([iv, body, cipher.getAuthTag()]).toString("base64url");
  }

  /** The plaintext of a sealed text; throws SealedSecretError if the key or context differ, or it was changed. */
  open(sealed: string, context = ""): string {
    if (!sealed.startsWith(SEALED_PREFIX)) {
      throw new SealedSecretError("not a sealed secret of a format this Mailroom knows (expected v1:)");
    }
    const bytes = Buffer.from(sealed.slice(SEALED_PREFIX.length), "base64url");
    if (bytes.byteLength < MIN_SEALED_BYTES) throw new SealedSecretError("the sealed secret is truncated");
    const iv = bytes.subarray(0, IV_BYTES);
    const tag = bytes.subarray(bytes.byteLength - TAG_BYTES);
    const decipher = createDecipheriv("aes-256-gcm", this.aesKey, iv);
    decipher.setAAD(Buffer.from(context, "utf8"));
    decipher.setAuthTag(tag);
    try {
      const body = bytes.subarray(IV_BYTES, bytes.byteLength - TAG_BYTES);
      return Buffer.concat([decipher.update(body), decipher.final()]).toString("utf8");
    } catch {
      throw new SealedSecretError("the sealed secret does not open with this key (wrong key, or altered)");
    }
  }
}

/** The forms a key may take, for error messages. */
export const SECRET_KEY_FORMS =
  "64 or more hex characters, or base64 (or base64url) of 32 or more random bytes; e.g. the output of `openssl rand -hex 32`";

/**
 * The bytes of a key given as text; throws an Error saying which forms are accepted. A key must
 * look random: fewer than 16 distinct byte values in 32 or more bytes (all zeros, a repeated word)
 * is refused, which random bytes are practically never.
 */
export function parseSecretKey(text: string): Buffer {
  const trimmed = text.trim();
  let bytes: Buffer | undefined;
  if (/^[0-9a-fA-F]+$/.test(trimmed) && trimmed.length % 2 === 0 && trimmed.length >= 64) {
    bytes = Buffer.from(trimmed, "hex");
  } else if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(trimmed)) {
    const decoded = Buffer.from(trimmed.replace(/=+$/, ""), "base64url");
    // Text that is not really base64 (wrong length) decodes to something else: compare both ways.
    if (
      decoded.toString("base64url") === trimmed.replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_")
    ) {
      bytes = decoded;
    }
  }
  if (bytes === undefined || bytes.byteLength < SECRET_KEY_BYTES) {
    throw new Error(`must be ${SECRET_KEY_FORMS}`);
  }
  if (new Set(bytes).size < 16) {
    throw new Error(`does not look random (too few distinct bytes); use ${SECRET_KEY_FORMS}`);
  }
  return bytes;
}

/** A new random key, as the hex text stored in secret.key. */
export function newSecretKeyText(): string {
  return randomBytes(SECRET_KEY_BYTES).toString("hex");
}
