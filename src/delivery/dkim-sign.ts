import { dkimSign } from "mailauth/lib/dkim/sign.js";

/** One key a message is signed with, as the sign step passes it to where the MIME is composed. */
export interface SigningKey {
  /** d=: the domain that holds the key (the From domain or a parent of it). */
  domain: string;
  /** s= */
  selector: string;
  /** PKCS#8 PEM (RSA-2048 or Ed25519). */
  privateKeyPem: string;
}

/**
 * The headers a receiver checks, signed when present. mailauth's default list would also sign
 * headers a relay may add on the way (it lists every header it knows); these are the ones a
 * message from Mailroom carries and a receiver shows or acts on.
 */
export const SIGNED_HEADERS = [
  "From",
  "Sender",
  "Reply-To",
  "Subject",
  "Date",
  "Message-ID",
  "To",
  "Cc",
  "MIME-Version",
  "Content-Type",
  "Content-Transfer-Encoding",
  "In-Reply-To",
  "References",
  "List-Unsubscribe",
  "List-Unsubscribe-Post",
];
const SIGNED_HEADERS_LIST = SIGNED_HEADERS.join(":");

/**
 * The message with its DKIM-Signature headers on top (relaxed/relaxed, one per key), over the exact
 * bytes that are sent and stored. Signing that fails throws: a message meant to be signed is never
 * sent without it (the attempt is retried).
 */
export async function signMime(mime: string, keys: readonly SigningKey[]): Promise<string> {
  const { signatures, errors } = await dkimSign(mime, {
    canonicalization: "relaxed/relaxed",
    headerList: SIGNED_HEADERS_LIST,
    signatureData: keys.map((key) => ({
      signingDomain: key.domain,
      selector: key.selector,
      privateKey: key.privateKeyPem,
    })),
  });
  if (errors.length > 0) {
    const first = errors[0];
    throw new Error(
      `DKIM signing with ${first?.selector ?? "?"}._domainkey.${first?.signingDomain ?? "?"} failed: ${first?.err.message}`,
    );
  }
  return signatures + mime;
}
