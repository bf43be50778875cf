import { generateKeyPair, randomBytes } from "node:crypto";
import { promisify } from "node:util";

const generate = promisify(generateKeyPair);

/** The DKIM key algorithms a domain may sign with: RSA-2048 always, Ed25519 as a second signature. */
export const DKIM_ALGORITHMS = ["rsa", "ed25519"] as const;
export type DkimAlgorithm = (typeof DKIM_ALGORITHMS)[number];

/**
 * A key's place in its domain's life: `active` signs; `pending` (made by a rotation) waits for its
 * DKIM record to verify, then becomes active and the key it replaces `previous` (still published,
 * listed, no longer signing) until it is retired.
 */
export type DkimKeyState = "active" | "pending" | "previous";

/** One DKIM key as stored in a domain's row (the private key sealed, never shown). */
export interface StoredDkimKey {
  selector: string;
  algorithm: DkimAlgorithm;
  state: DkimKeyState;
  /** The `p=` value of its DNS record: base64 SPKI (RSA) or the raw 32-byte key (Ed25519, RFC 8463). */
  publicKey: string;
  /** PKCS#8 PEM sealed with the installation's secret box (context: dkimKeyContext). */
  privateKeySealed: string;
  created: number;
}

/** A freshly made key pair: the private key in PEM (to seal at once) and its record's `p=`. */
export interface NewDkimKey {
  selector: string;
  algorithm: DkimAlgorithm;
  publicKey: string;
  privateKeyPem: string;
}

/** The sealed key opens only as this domain's key with this selector. */
export function dkimKeyContext(domainName: string, selector: string): string {
  return `dkim:${domainName}:${selector}`;
}

/**
 * `mr` + the UTC date + 4 random hex digits (+ `e` for Ed25519), e.g. `mr20261129a3f0`: a rotation
 * never reuses a selector, and the date tells an operator which key is which.
 */
export function newSelector(algorithm: DkimAlgorithm, now: number): string {
  const day = new Date(now).toISOString().slice(0, 10).replaceAll("-", "");
  return `mr${day}${randomBytes(2).toString("hex")}${algorithm === "ed25519" ? "e" : ""}`;
}

/** Generates a key pair off the event loop (libuv's thread pool: an RSA-2048 pair takes ~100 ms). */
export async function newDkimKey(algorithm: DkimAlgorithm, now: number): Promise<NewDkimKey> {
  const selector = newSelector(algorithm, now);
  if (algorithm === "rsa") {
    const { publicKey, privateKey } = await generate("rsa", {
      modulusLength: 2048,
      publicKeyEncoding: { type: "spki", format: "der" },
      privateKeyEncoding: { type: "pkcs8", format: "pem" },
    });
    return { selector, algorithm, publicKey: publicKey.toString("base64"), privateKeyPem: privateKey };
  }
  const { publicKey, privateKey } = await generate("ed25519", {
    publicKeyEncoding: { type: "spki", format: "der" },
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
  });
  // RFC 8463: the record carries the bare 32-byte key, the last 32 bytes of its SPKI form.
  const raw = publicKey.subarray(publicKey.length - 32);
  return { selector, algorithm, publicKey: raw.toString("base64"), privateKeyPem: privateKey };
}

/** The DKIM TXT record's text for a key, as the user publishes it. */
export function dkimRecordValue(key: Pick<StoredDkimKey, "algorithm" | "publicKey">): string {
  return `v=DKIM1; k=${key.algorithm}; p=${key.publicKey}`;
}
