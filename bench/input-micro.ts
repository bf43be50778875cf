/**
 * `npm run bench:input`: what the input checks of the send path cost, per call, in this process (CPU
 * time, the median of 7 rounds): the UTF-8 check of a body, the JSON duplicate-key scan, form parsing,
 * readEmailRequest on a plain 1 KB message and on a 10 MB body, and a 10 MB To (refused before it is
 * read). Figures and the older code's are in docs/performance.md; the machine's load moves them.
 */
import { isUtf8 } from "node:buffer";
import { parseAddressList } from "../src/domain/addresses.js";
import { parseFormBody } from "../src/http/form.js";
import { findDuplicateKey } from "../src/http/json-keys.js";
import { readEmailRequest } from "../src/model/email-message.js";

function measure(label: string, iterations: number, fn: () => unknown): void {
  for (let i = 0; i < Math.min(iterations, 200); i++) fn();
  const rounds: number[] = [];
  for (let round = 0; round < 7; round++) {
    const start = process.cpuUsage();
    for (let i = 0; i < iterations; i++) fn();
    const used = process.cpuUsage(start);
    rounds.push((used.user + used.system) / iterations);
  }
  rounds.sort((a, b) => a - b);
  console.log(`${label.padEnd(60)} ${(rounds[3] as number).toFixed(2).padStart(10)} µs`);
}

const refused = (fn: () => unknown) => () => {
  try {
    fn();
  } catch {
    // Refusing is the point.
  }
};

const body = "Hello,\n\nThis is the message body. ".repeat(28).slice(0, 1024);
const params = {
  From: "Jane Doe <jane.doe@example.org>",
  To: "john.doe@example.org",
  Subject: "Your order 12345 has shipped",
  Body: body,
  StatusCallback: "https://hooks.example.org/mail?x=1",
};
const form = new URLSearchParams(params).toString();
const json = JSON.stringify(params);
const jsonBytes = Buffer.from(json);
const bigJson = JSON.stringify({
  ...params,
  Attachments: [{ Filename: "a.bin", Content: Buffer.alloc(7.5 * 1024 * 1024, 7).toString("base64") }],
});
const bigJsonBytes = Buffer.from(bigJson);
const oneByte = "Hello, this is a body. ".repeat(460_000).slice(0, 10 * 1024 * 1024);
const twoByte = `${oneByte.slice(0, -1)}€`;
const tenMbTo = "recipient@example.org, ".repeat(Math.ceil((10 * 1024 * 1024) / 23));

measure(`form body of ${form.length} bytes: parseFormBody`, 20_000, () => parseFormBody(Buffer.from(form)));
measure(`JSON body of ${json.length} bytes: isUtf8`, 100_000, () => isUtf8(jsonBytes));
measure(`JSON body of ${json.length} bytes: JSON.parse (for scale)`, 20_000, () => JSON.parse(json));
measure(`JSON body of ${json.length} bytes: findDuplicateKey`, 100_000, () => findDuplicateKey(json));
measure("readEmailRequest, plain 1 KB message", 20_000, () => readEmailRequest({ ...params }));
measure(`JSON body of ${bigJson.length} bytes: isUtf8`, 20, () => isUtf8(bigJsonBytes));
measure(`JSON body of ${bigJson.length} bytes: findDuplicateKey`, 20, () => findDuplicateKey(bigJson));
measure("readEmailRequest, 10 MB Body of Latin-1 text", 10, () =>
  readEmailRequest({ ...params, Body: oneByte }),
);
measure("readEmailRequest, 10 MB Body with a character past Latin-1", 10, () =>
  readEmailRequest({ ...params, Body: twoByte }),
);
measure("parseAddressList, 3 addresses with names", 20_000, () =>
  parseAddressList('"Doe, Jane" <jane@example.org>, Bob Smith <bob@example.org>, carol@example.org'),
);
measure(
  "readEmailRequest, 10 MB To (refused)",
  20,
  refused(() => readEmailRequest({ ...params, To: tenMbTo })),
);
