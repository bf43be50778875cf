import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { test } from "node:test";
import { dkimSign } from "mailauth/lib/dkim/sign.js";
import { checkSignatures, type SigningKey } from "../bench/dkim-check.js";
import type { Sink, SinkCounts } from "../bench/sink.js";

// The bench's proof that a signing row's mail was signed: a row must fail unless every message carried a
// DKIM-Signature and the kept samples verify against the row's key.

const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const key: SigningKey = {
  domain: "example.com",
  selector: "bench",
  record: `v=DKIM1; k=rsa; p=${publicKey.export({ type: "spki", format: "der" }).toString("base64")}`,
};
const message =
  "From: <sender@example.com>\r\nTo: <recipient@example.net>\r\nSubject: Bench\r\n\r\nHello\r\n";

async function signed(body = message, selector = key.selector): Promise<Buffer> {
  const { signatures, errors } = await dkimSign(body, {
    canonicalization: "relaxed/relaxed",
    signatureData: [
      {
        signingDomain: key.domain,
        selector,
        privateKey: privateKey.export({ type: "pkcs8", format: "pem" }),
      },
    ],
  });
  assert.deepEqual(errors, []);
  return Buffer.from(signatures + body);
}

function fakeSink(signedCount: number, samples: Buffer[]): Sink {
  const counts: SinkCounts = {
    messages: signedCount,
    bytes: 0,
    duplicates: 0,
    signed: signedCount,
    firstAt: undefined,
    lastAt: undefined,
  };
  return {
    kind: "node",
    description: "fake",
    port: 0,
    inspectsMessages: true,
    counts: () => counts,
    reset: async () => {},
    samples: async (count) => samples.slice(0, count),
    close: async () => {},
  };
}

test("signed messages whose samples verify against the key pass", async () => {
  const samples = [await signed(), await signed()];
  assert.deepEqual(await checkSignatures(fakeSink(2, samples), 2, key), {
    signedAtSink: 2,
    verifiedSamples: 2,
  });
});

test("fewer signed messages than delivered fails the row", async () => {
  await assert.rejects(checkSignatures(fakeSink(9, [await signed()]), 10, key), /only 9 of the 10 messages/);
});

test("a sample altered after signing, or signed with another selector, fails the row", async () => {
  const altered = Buffer.from((await signed()).toString().replace("Hello", "Hullo"));
  await assert.rejects(checkSignatures(fakeSink(1, [altered]), 1, key), /sample 1 did not verify/);
  const otherSelector = await signed(message, "other");
  await assert.rejects(checkSignatures(fakeSink(1, [otherSelector]), 1, key), /sample 1 did not verify/);
});

test("missing samples fail the row", async () => {
  await assert.rejects(checkSignatures(fakeSink(3, [await signed()]), 3, key), /kept 1 of 3 sample/);
});
