import assert from "node:assert/strict";
import net from "node:net";
import { describe, test } from "node:test";
import { FAST_RETRIES } from "./helpers/delivery.js";
import { sendEmail, startMailroom, type TestServer } from "./helpers/mailroom.js";
import { rawFormSend } from "./helpers/raw-http.js";
import { SmtpSink } from "./helpers/smtp-sink.js";
import { storeVariants } from "./helpers/stores.js";
import { waitFor } from "./helpers/wait.js";

const FORM = "From=jane%40example.com&To=john%40example.com&Subject=stopping&Body=hello";

/** Closes the server and waits until the stop is under way (new requests are refused from then on). */
async function beginClose(server: TestServer): Promise<{ closed: Promise<void> }> {
  const closed = server.close();
  const app = server.mailroom.app as unknown as { isStopping(): boolean };
  await waitFor("the server to begin stopping", () => app.isStopping());
  // Wrapped: an async function returning the promise itself would wait for it.
  return { closed };
}

for (const variant of await storeVariants()) {
  describe(`HTTP during a graceful stop (${variant.kind})`, { skip: variant.skip, timeout: 30_000 }, () => {
    test("a request under way finishes and says Connection: close; a new one gets a coded 503 (20021)", async () => {
      const server = await startMailroom({ store: variant.kind });
      const half = Math.floor(FORM.length / 2);
      const client = rawFormSend(server, FORM.length);
      try {
        await client.write(FORM.slice(0, half));
        // A second connection has sent part of its request's head: not idle, so the stop keeps it.
        const late = net.connect(Number(new URL(server.url).port), "127.0.0.1");
        let lateAnswer = "";
        late.on("data", (chunk: Buffer) => {
          lateAnswer += chunk.toString("utf8");
        });
        late.on("error", () => {});
        await new Promise((resolve) => late.write("GET /readyz HTTP/1.1\r\nhost: x\r\n", resolve));
        await waitFor("the request to be admitted", () => {
          const app = server.mailroom.app as unknown as { bodyBudget: { inUse: number } };
          return app.bodyBudget.inUse > 0;
        });
        const { closed } = await beginClose(server);
        // Its request completes during the stop: refused with a code, and the connection closed.
        late.write("accept: application/json\r\n\r\n");
        await waitFor("the late request's answer", () => lateAnswer.includes("\r\n\r\n{"));
        assert.match(lateAnswer, /^HTTP\/1\.1 503 /);
        assert.match(lateAnswer, /\r\nconnection: close\r\n/i);
        assert.match(lateAnswer, /"code":20021/);
        late.destroy();

        await client.write(FORM.slice(half));
        const answer = await client.response();
        assert.equal(answer?.status, 200, answer?.body);
        assert.match(JSON.parse(answer?.body ?? "{}").sid, /^EM/);
        // Not kept alive: the stop does not wait out the keep-alive timeout (72 s) for this connection.
        assert.equal(answer?.headers.connection, "close");
        await closed;
      } finally {
        client.close();
      }
    });

    test("deliveries cut at the shutdown timeout are logged at info, not as errors", async () => {
      const sink = await SmtpSink.start({ rules: { dataDelayMs: 5000 } });
      const logLines: Array<Record<string, unknown>> = [];
      const server = await startMailroom({
        store: variant.kind,
        logLines,
        env: { MAILROOM_SMTP_URL: sink.url, MAILROOM_SHUTDOWN_TIMEOUT_MS: "200", ...FAST_RETRIES },
      });
      try {
        for (let i = 0; i < 5; i++) assert.equal((await sendEmail(server, server.admin)).status, 200);
        await waitFor("deliveries in flight", () => sink.unanswered >= 5);
        // Only the stop's lines: a first start warns about the secret key it generated.
        const stopLines = logLines.length;
        await server.close();
        const loud = logLines.slice(stopLines).filter((line) => (line.level as number) >= 40);
        assert.deepEqual(
          loud.map((line) => line.msg),
          [],
          "a normal stop writes nothing at warn or error",
        );
        assert.ok(logLines.some((line) => String(line.msg).includes("released for the next start")));
      } finally {
        await sink.stop();
      }
    });
  });
}
