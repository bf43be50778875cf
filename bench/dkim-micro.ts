/**
 * `node dist/bench/dkim-micro.js`: what one DKIM signature of a plain 1 KB message costs in this
 * process, CPU time per message (the median of 5 rounds of 1,000), with the two signers at hand:
 * mailauth's dkimSign and nodemailer's DKIM signer, each given the PEM key as stored (both parse it
 * per message), nodemailer's with a key parsed once, and Mailroom's signMime (src/delivery/dkim-sign.ts:
 * mailauth's parts, a key parsed once per thread, the signature in libuv's pool; CPU of every thread
 * of the process is counted); and the parts: parsing the PEM key, the RSA-2048 signature.
 * Figures in docs/performance.md; the machine's load moves them.
 */
import { createPrivateKey, generateKeyPairSync, sign } from "node:crypto";
import { dkimSign } from "mailauth/lib/dkim/sign.js";
import DKIM from "nodemailer/lib/dkim";
import { composeMime } from "../src/delivery/compose.js";
import { signMime } from "../src/delivery/dkim-sign.js";
import { plainContent } from "../test/helpers/store-rows.js";

const ROUNDS = 5;
const PER_ROUND = 1000;

async function measure(label: string, fn: () => unknown): Promise<void> {
  for (let i = 0; i < 100; i++) await fn();
  const rounds: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const start = process.cpuUsage();
    for (let i = 0; i < PER_ROUND; i++) await fn();
    const used = process.cpuUsage(start);
    rounds.push((used.user + used.system) / PER_ROUND);
  }
  rounds.sort((a, b) => a - b);
  const median = rounds[Math.floor(ROUNDS / 2)] as number;
  console.log(`${label.padEnd(58)} ${median.toFixed(1).padStart(8)} µs  (${Math.round(1e6 / median)}/s)`);
}

const { privateKey } = generateKeyPairSync("rsa", {
  modulusLength: 2048,
  privateKeyEncoding: { type: "pkcs8", format: "pem" },
  publicKeyEncoding: { type: "spki", format: "pem" },
});
const keyObject = createPrivateKey(privateKey);
const mime = await composeMime({
  content: plainContent({ body: "x".repeat(1024) }),
  messageId: "<EM0@bench.example>",
  date: Date.now(),
  attachments: new Map(),
});
const keys = [{ domain: "bench.example", selector: "mr1", privateKeyPem: privateKey }];
const nodemailerSigner = new DKIM({ domainName: "bench.example", keySelector: "mr1", privateKey });

console.log(`one ${mime.length}-byte message, RSA-2048, relaxed/relaxed`);
await measure("signMime (what Mailroom runs)", () => signMime(mime, keys));
await measure("mailauth dkimSign, PEM key", () =>
  dkimSign(mime, {
    canonicalization: "relaxed/relaxed",
    signatureData: [{ signingDomain: "bench.example", selector: "mr1", privateKey }],
  }),
);
await measure("nodemailer DKIM signer, PEM key", async () => {
  const chunks: Buffer[] = [];
  for await (const chunk of nodemailerSigner.sign(mime)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
});
const withKeyObject = new DKIM({ domainName: "bench.example", keySelector: "mr1", privateKey: keyObject });
await measure("nodemailer DKIM signer, key parsed once (KeyObject)", async () => {
  const chunks: Buffer[] = [];
  for await (const chunk of withKeyObject.sign(mime)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
});
await measure("part: createPrivateKey(PEM)", () => createPrivateKey(privateKey));
await measure("part: RSA-SHA256 signature with a parsed key", () =>
  sign("sha256", Buffer.from(mime.slice(0, 600)), keyObject),
);
