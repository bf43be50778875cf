import { createPrivateKey, type KeyObject } from "node:crypto";
import { dkimSign } from "mailauth/lib/dkim/sign.js";
import DKIM from "nodemailer/lib/dkim";

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
 * The headers a receiver checks, signed when present (each once, the last occurrence, as both
 * signers do). The libraries' default lists name every header they know, headers a relay may add
 * on the way among them; these are the ones a message from Mailroom carries and a receiver shows
 * or acts on.
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
 * Parsed keys of this thread, by domain and selector. Parsing a PEM key (OpenSSL 3's decoders)
 * cost more than half of what the signature itself does (bench/dkim-micro.ts), and both libraries
 * parse it per message when given PEM; nodemailer's signer takes a parsed key.
 */
const parsedKeys = new Map<string, { pem: string; key: KeyObject }>();
const MAX_PARSED_KEYS = 1000;

function parsedKey(signing: SigningKey): KeyObject {
  const id = `${signing.selector}._domainkey.${signing.domain}`;
  const known = parsedKeys.get(id);
  if (known !== undefined && known.pem === signing.privateKeyPem) return known.key;
  if (parsedKeys.size >= MAX_PARSED_KEYS) parsedKeys.clear();
  const key = createPrivateKey(signing.privateKeyPem);
  parsedKeys.set(id, { pem: signing.privateKeyPem, key });
  return key;
}

/**
 * The message with its DKIM-Signature headers on top (relaxed/relaxed, one per key), over the exact
 * bytes that are sent and stored. RSA signatures come from nodemailer's signer with the parsed key
 * (half the CPU of mailauth's, which parses the PEM each time); Ed25519, which nodemailer does not
 * sign, from mailauth. Signing that fails throws: a message meant to be signed is never sent without
 * it (the attempt is retried).
 */
export async function signMime(mime: string, keys: readonly SigningKey[]): Promise<string> {
  const headers: string[] = [];
  for (const signing of keys) {
    const key = parsedKey(signing);
    headers.push(
      key.asymmetricKeyType === "rsa"
        ? await rsaSignature(mime, signing, key)
        : await mailauthSignature(mime, signing),
    );
  }
  return headers.join("") + mime;
}

async function rsaSignature(mime: string, signing: SigningKey, key: KeyObject): Promise<string> {
  const signer = new DKIM({
    domainName: signing.domain,
    keySelector: signing.selector,
    privateKey: key,
    headerFieldNames: SIGNED_HEADERS_LIST,
  });
  const chunks: Buffer[] = [];
  for await (const chunk of signer.sign(mime)) chunks.push(chunk as Buffer);
  const signed = Buffer.concat(chunks).toString("latin1");
  // The signer writes its header line, then the message as given: only the header is taken.
  const header = signed.slice(0, signed.length - mime.length);
  if (!header.startsWith("DKIM-Signature: ") || !signed.endsWith(mime)) {
    throw new Error(
      `DKIM signing with ${signing.selector}._domainkey.${signing.domain} failed (no signature made)`,
    );
  }
  return header;
}

async function mailauthSignature(mime: string, signing: SigningKey): Promise<string> {
  const { signatures, errors } = await dkimSign(mime, {
    canonicalization: "relaxed/relaxed",
    headerList: SIGNED_HEADERS_LIST,
    signatureData: [
      { signingDomain: signing.domain, selector: signing.selector, privateKey: signing.privateKeyPem },
    ],
  });
  const failure = errors[0];
  if (failure !== undefined) {
    throw new Error(
      `DKIM signing with ${signing.selector}._domainkey.${signing.domain} failed: ${failure.err.message}`,
    );
  }
  return signatures;
}
