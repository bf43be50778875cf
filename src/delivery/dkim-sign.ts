import { createHash, createPrivateKey, sign as cryptoSign, type KeyObject } from "node:crypto";
import { promisify } from "node:util";

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
 * cost more than half of what the signature itself does (bench/dkim-micro.ts); mailauth's and
 * nodemailer's signers both parse it at every message when given PEM.
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
 * mailauth's parts, loaded at the first signature: they hold about 5 MB of heap in each thread that
 * loads them (main and relay), which every major GC marks, for installations that sign nothing.
 */
let mailauth:
  | Promise<
      [
        typeof import("mailauth/lib/dkim/body/index.js"),
        typeof import("mailauth/lib/dkim/header/index.js"),
        typeof import("mailauth/lib/tools.js"),
      ]
    >
  | undefined;

function loadMailauth() {
  mailauth ??= Promise.all([
    import("mailauth/lib/dkim/body/index.js"),
    import("mailauth/lib/dkim/header/index.js"),
    import("mailauth/lib/tools.js"),
  ]);
  return mailauth;
}

/** crypto.sign with a callback: the RSA or Ed25519 operation runs in libuv's thread pool. */
const signInPool = promisify(
  (
    algorithm: string | null,
    data: Buffer,
    key: KeyObject,
    done: (error: Error | null, signature: Buffer) => void,
  ) => cryptoSign(algorithm, data, key, done),
);

/**
 * The message with its DKIM-Signature headers on top (relaxed/relaxed, one per key), over the exact
 * bytes that are sent and stored. Built from mailauth's own parts, as its DkimSigner does (header
 * parsing, relaxed body hash, canonicalized header, the header line's format), except that the key
 * is parsed once per thread and the signature is made in libuv's thread pool: the thread composing
 * (the relay thread) goes on with other messages meanwhile, and signatures use every core. Signing
 * that fails throws: a message meant to be signed is never sent without it (the attempt is retried).
 */
export async function signMime(mime: string, keys: readonly SigningKey[]): Promise<string> {
  const [
    { dkimBody },
    { generateCanonicalizedHeader },
    { formatSignatureHeaderLine, getSigningHeaderLines, parseHeaders },
  ] = await loadMailauth();
  const bytes = Buffer.from(mime, "latin1");
  const split = bytes.indexOf("\r\n\r\n");
  if (split < 0) throw new Error("DKIM signing: the message has no header/body boundary");
  const headerEnd = split + 4;
  const hasher = dkimBody("relaxed", "sha256", false);
  hasher.update(bytes.subarray(headerEnd));
  const bodyHash = hasher.digest("base64");
  const signingLines = getSigningHeaderLines(
    parseHeaders(bytes.subarray(0, headerEnd)).parsed,
    SIGNED_HEADERS_LIST,
  );
  const signTime = new Date();
  const headers = await Promise.all(
    keys.map(async (signing) => {
      const key = parsedKey(signing);
      const rsa = key.asymmetricKeyType === "rsa";
      const { canonicalizedHeader, dkimHeaderOpts } = generateCanonicalizedHeader("DKIM", signingLines, {
        signingDomain: signing.domain,
        selector: signing.selector,
        algorithm: rsa ? "rsa-sha256" : "ed25519-sha256",
        canonicalization: "relaxed/relaxed",
        bodyHash,
        // t= given once: left out, mailauth takes the clock twice (the signed line and the header
        // written after the signature), and the two may fall in different seconds.
        signTime,
      });
      // RFC 8463: Ed25519 signs the SHA-256 of the canonicalized header (PureEdDSA over the hash).
      const data = rsa ? canonicalizedHeader : createHash("sha256").update(canonicalizedHeader).digest();
      const signature = await signInPool(rsa ? "sha256" : null, data, key);
      dkimHeaderOpts.b = signature.toString("base64");
      return `${formatSignatureHeaderLine("DKIM", dkimHeaderOpts, true)}\r\n`;
    }),
  );
  return headers.join("") + mime;
}
