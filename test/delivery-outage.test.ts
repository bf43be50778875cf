import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { FAST_RETRIES, getAttempts, getMessage, waitForFinal } from "./helpers/delivery.js";
import { sendEmail, startMailroom } from "./helpers/mailroom.js";
import { SmtpSink } from "./helpers/smtp-sink.js";
import { storeVariants } from "./helpers/stores.js";
import { waitFor } from "./helpers/wait.js";

for (const variant of await storeVariants()) {
  describe(`relay outages (${variant.kind})`, { skip: variant.skip }, () => {
    test("relay down, then up: every message waits, then all are delivered and none fail", async () => {
      const sink = await SmtpSink.start();
      await sink.stop();
      // Two attempts would fail a message if unreachable attempts counted: they must not.
      const server = await startMailroom({
        store: variant.kind,
        env: { MAILROOM_SMTP_URL: sink.url, MAILROOM_MAX_ATTEMPTS: "2", ...FAST_RETRIES },
      });
      try {
        const sent = await Promise.all(
          Array.from({ length: 20 }, (_, i) => sendEmail(server, server.admin, { Subject: `outage ${i}` })),
        );
        const messages = sent.map((response) => response.json as { sid: string; message_id: string });
        await waitFor("every message to have failed at least three attempts", async () => {
          for (const { sid } of messages) {
            if ((await getMessage(server, server.admin, sid)).num_attempts < 3) return false;
          }
          return true;
        });
        const waiting = await getMessage(server, server.admin, messages[0]?.sid ?? "");
        assert.ok(["queued", "sending"].includes(waiting.status), waiting.status);
        assert.equal(waiting.error_code, 13104);
        assert.match(waiting.error_message, /connection refused/);
        assert.match(waiting.error_message, new RegExp(`127\\.0\\.0\\.1:${sink.port}`));

        await sink.restart();
        for (const { sid, message_id } of messages) {
          const message = await waitForFinal(server, server.admin, sid);
          assert.equal(message.status, "sent", `${sid}: ${message.error_message}`);
          assert.equal(sink.count(message_id), 1);
        }
        const attempts = await getAttempts(server, server.admin, messages[0]?.sid ?? "");
        assert.equal(attempts.at(-1).outcome, "accepted");
        assert.ok(attempts.slice(0, -1).every((a: { error_code: number }) => a.error_code === 13104));
      } finally {
        await server.close();
        await sink.stop();
      }
    });
  });
}

describe("relay TLS settings", () => {
  test("smtps:// speaks TLS from the first byte; URL options such as tls.rejectUnauthorized reach the client", async () => {
    const sink = await SmtpSink.start({ secure: true });
    const server = await startMailroom({ env: { MAILROOM_SMTP_URL: sink.url, ...FAST_RETRIES } });
    try {
      const accepted = (await sendEmail(server, server.admin)).json;
      const message = await waitForFinal(server, server.admin, accepted.sid);
      assert.equal(message.status, "sent", message.error_message);
      assert.equal(sink.count(accepted.message_id), 1);
    } finally {
      await server.close();
      await sink.stop();
    }
  });

  test("MAILROOM_SMTP_STARTTLS=required refuses a relay without STARTTLS and says what to fix", async () => {
    const sink = await SmtpSink.start();
    const server = await startMailroom({
      env: { MAILROOM_SMTP_URL: sink.url, MAILROOM_SMTP_STARTTLS: "required", ...FAST_RETRIES },
    });
    try {
      const accepted = (await sendEmail(server, server.admin)).json;
      const message = await waitFor("a failed TLS attempt", async () => {
        const current = await getMessage(server, server.admin, accepted.sid);
        return current.num_attempts >= 1 ? current : undefined;
      });
      assert.notEqual(
        message.status,
        "failed",
        "a relay setup problem is retried, not blamed on the message",
      );
      assert.equal(message.error_code, 13105);
      assert.match(message.error_message, /refused STARTTLS/);
      assert.match(message.error_message, /MAILROOM_SMTP_STARTTLS is required/);
      assert.equal(sink.received.length, 0, "nothing went out in clear text");
    } finally {
      await server.close();
      await sink.stop();
    }
  });
});
