import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFile, rm, writeFile } from "node:fs/promises";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { waitForFinal } from "./helpers/delivery.js";
import { sendEmail, startMailroom, type TestServer } from "./helpers/mailroom.js";
import { SmtpSink } from "./helpers/smtp-sink.js";
import { storeVariants } from "./helpers/stores.js";
import { waitFor } from "./helpers/wait.js";
import { createWebhook, type Receiver, startReceiver } from "./helpers/webhooks.js";

type Verify = (secret: string, body: string, headers: Record<string, string>) => unknown;

/**
 * The verification examples of docs/events.md, as written there: each ```js block titled
 * verify-with-….mjs is saved beside the tests (so `standardwebhooks` resolves from the project's
 * node_modules) and imported.
 */
async function docExamples(): Promise<Map<string, Verify>> {
  const doc = await readFile(fileURLToPath(new URL("../../docs/events.md", import.meta.url)), "utf8");
  const examples = new Map<string, Verify>();
  for (const match of doc.matchAll(/```js title="(verify-with-[a-z]+\.mjs)"\n([\s\S]*?)```/g)) {
    const [, title, code] = match as unknown as [string, string, string];
    const file = fileURLToPath(new URL(`./.doc-${randomBytes(4).toString("hex")}-${title}`, import.meta.url));
    await writeFile(file, code);
    try {
      const module = (await import(file)) as { verify: Verify };
      examples.set(title, module.verify);
    } finally {
      await rm(file, { force: true });
    }
  }
  return examples;
}

for (const variant of await storeVariants()) {
  describe(`docs/events.md's verification examples (${variant.kind})`, { skip: variant.skip }, () => {
    let sink: SmtpSink;
    let server: TestServer;
    let receiver: Receiver;
    before(async () => {
      sink = await SmtpSink.start();
      receiver = await startReceiver();
      server = await startMailroom({ store: variant.kind, env: { MAILROOM_SMTP_URL: sink.url } });
    });
    after(async () => {
      await server?.close();
      await receiver?.close();
      await sink?.stop();
    });

    test("both verify real deliveries, and refuse a changed body or a wrong secret", async () => {
      const examples = await docExamples();
      assert.deepEqual([...examples.keys()].sort(), [
        "verify-with-crypto.mjs",
        "verify-with-standardwebhooks.mjs",
      ]);
      const hook = await createWebhook(server, server.admin, `${receiver.url}/hook`);
      const sent = await sendEmail(server, server.admin);
      await waitForFinal(server, server.admin, sent.json.sid);
      await waitFor("both events", () => receiver.received.length >= 2);
      const other = `whsec_${randomBytes(24).toString("base64")}`;
      for (const [title, verify] of examples) {
        for (const request of receiver.received) {
          const headers = request.headers as Record<string, string>;
          const event = verify(hook.secret, request.body, headers) as { data: { message_sid: string } };
          assert.equal(event.data.message_sid, sent.json.sid, title);
          const changed = request.body.replace('"data":{', '"data":{"forged":true,');
          assert.notEqual(changed, request.body);
          assert.throws(() => verify(hook.secret, changed, headers), `${title} refuses a changed body`);
          assert.throws(() => verify(other, request.body, headers), `${title} refuses another secret`);
        }
      }
    });
  });
}
