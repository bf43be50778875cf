/**
 * Proof that a signing row's mail really was signed, cheap enough to run inside the bench: the sink
 * counts the messages that carry a DKIM-Signature header, and a few messages kept whole are verified with
 * mailauth against the signing key's public half (served by a resolver here, no DNS).
 */
import { dkimVerify } from "mailauth/lib/dkim/verify.js";
import type { Sink } from "./sink.js";

/** Messages of the measured run kept whole and verified. */
export const VERIFIED_SAMPLES = 10;

export interface SigningKey {
  domain: string;
  selector: string;
  /** The key's DNS TXT record ("v=DKIM1; k=rsa; p=..."). */
  record: string;
}

export interface SignatureCheck {
  signedAtSink: number;
  verifiedSamples: number;
}

/** A resolver for mailauth that knows only the key's TXT record. */
function resolverFor(key: SigningKey) {
  const name = `${key.selector}._domainkey.${key.domain}`;
  return async (query: string, type: string) => {
    if (type === "TXT" && query.toLowerCase() === name) return [[key.record]];
    throw Object.assign(new Error(`no ${type} record for ${query}`), { code: "ENOTFOUND" });
  };
}

/**
 * Throws unless every one of the `delivered` messages the sink counted carried a DKIM-Signature and each
 * sample kept by the sink (asked for with `sink.reset(VERIFIED_SAMPLES)`) verifies as `key`'s signature.
 */
export async function checkSignatures(
  sink: Sink,
  delivered: number,
  key: SigningKey,
): Promise<SignatureCheck> {
  if (!sink.inspectsMessages) throw new Error("the sink does not read messages: cannot check signatures");
  const { signed } = sink.counts();
  if (signed < delivered) {
    throw new Error(
      `only ${signed} of the ${delivered} messages at the sink carried a DKIM-Signature header`,
    );
  }
  const wanted = Math.min(VERIFIED_SAMPLES, delivered);
  const samples = await sink.samples(wanted, 10_000);
  if (samples.length < wanted)
    throw new Error(`the sink kept ${samples.length} of ${wanted} sample messages`);
  const resolver = resolverFor(key);
  for (const [index, raw] of samples.entries()) {
    const { results } = await dkimVerify(raw, { resolver });
    const pass = results.find(
      (r) => r.status.result === "pass" && r.signingDomain === key.domain && r.selector === key.selector,
    );
    if (!pass) {
      const found = results.map((r) => `d=${r.signingDomain} s=${r.selector}: ${r.status.result}`).join("; ");
      throw new Error(`sample ${index + 1} did not verify as d=${key.domain} s=${key.selector} (${found})`);
    }
  }
  return { signedAtSink: signed, verifiedSamples: samples.length };
}
