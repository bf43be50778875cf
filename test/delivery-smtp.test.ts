import assert from "node:assert/strict";
import { after, before, beforeEach, describe, test } from "node:test";
import { FAST_RETRIES, getAttempts, waitForFinal } from "./helpers/delivery.js";
import { sendEmail, startMailroom, type TestServer } from "./helpers/mailroom.js";
import { type ReceivedMessage, SmtpSink } from "./helpers/smtp-sink.js";
import { storeVariants } from "./helpers/stores.js";

for (const variant of await storeVariants()) {
  describe(`delivery through an SMTP relay (${variant.kind})`, { skip: variant.skip }, () => {
    let sink: SmtpSink;
    let server: TestServer;

    before(async () => {
      sink = await SmtpSink.start({ size: 64 * 1024 });
      server = await startMailroom({
        store: variant.kind,
        env: { MAILROOM_SMTP_URL: sink.url, MAILROOM_MAX_ATTEMPTS: "4", ...FAST_RETRIES },
      });
    });
    after(async () => {
      await server?.close();
      await sink?.stop();
    });
    beforeEach(() => {
      sink.rules = {};
    });

    async function send(fields: Record<string, string>) {
      const response = await sendEmail(server, server.admin, fields);
      assert.equal(response.status, 200, response.text);
      return response.json as { sid: string; message_id: string };
    }

    test("delivers headers, body and envelope: To and CC in headers, BCC only in the envelope", async () => {
      const accepted = await send({
        From: "Jäne Doe <jane@sender.example>",
        To: "john@rcpt.example, Ann <ann@rcpt.example>",
        CC: "carl@rcpt.example",
        BCC: "hidden@rcpt.example",
        Subject: "Grüße aus Köln ✓",
        Body: "<p>Hallo <b>Welt</b> – ça va?</p>",
        Type: "text/html",
      });
      const message = await waitForFinal(server, server.admin, accepted.sid);
      assert.equal(message.status, "sent");
      assert.equal(message.num_attempts, 1);
      assert.ok(message.date_delivered);

      const [received] = sink.received.filter((m) => m.messageId === accepted.message_id);
      assert.ok(received, "the sink received the message");
      assert.equal(received.from, "jane@sender.example");
      assert.deepEqual(received.to.sort(), [
        "ann@rcpt.example",
        "carl@rcpt.example",
        "hidden@rcpt.example",
        "john@rcpt.example",
      ]);
      assert.doesNotMatch(received.raw, /^bcc:/im);
      assert.doesNotMatch(received.raw, /hidden@rcpt\.example/);
      // Non-ASCII travels RFC 2047-encoded and decodes back to the original.
      assert.match(received.raw, /^Subject: =\?UTF-8\?/m);
      assert.equal(received.parsed.subject, "Grüße aus Köln ✓");
      assert.equal(received.parsed.from?.value[0]?.name, "Jäne Doe");
      assert.equal(String(received.parsed.html).trimEnd(), "<p>Hallo <b>Welt</b> – ça va?</p>");
      assert.deepEqual(contentTypeOf(received), ["text/html", "utf-8"]);
      assert.equal(received.parsed.messageId, accepted.message_id);
      assert.ok(received.parsed.date instanceof Date);
      const cc = received.parsed.cc;
      assert.ok(cc && !Array.isArray(cc));
      assert.deepEqual(
        cc.value.map((a) => a.address),
        ["carl@rcpt.example"],
      );
    });

    test("a plain-text message arrives as text/plain; charset=utf-8 with its line breaks", async () => {
      const accepted = await send({ Body: "line one\nline two\n.\nlast" });
      await waitForFinal(server, server.admin, accepted.sid);
      const received = sink.received.find((m) => m.messageId === accepted.message_id);
      assert.ok(received);
      assert.deepEqual(contentTypeOf(received), ["text/plain", "utf-8"]);
      assert.equal(received.parsed.text?.trimEnd(), "line one\nline two\n.\nlast");
    });

    test("a 4xx reply is retried: one message, two attempts, the same Message-ID both times", async () => {
      sink.rules = {
        message: (m) =>
          sink.answered.some((a) => a.messageId === m.messageId)
            ? undefined
            : { code: 451, message: "4.3.0 Greylisted, try again" },
      };
      const accepted = await send({ Subject: "greylisted" });
      const message = await waitForFinal(server, server.admin, accepted.sid);
      assert.equal(message.status, "sent");
      assert.equal(message.num_attempts, 2);
      assert.equal(message.error_code, undefined, "a later success clears the earlier error");

      const attempts = await getAttempts(server, server.admin, accepted.sid);
      assert.deepEqual(
        attempts.map((a) => [a.attempt, a.outcome, a.smtp_code]),
        [
          [1, "deferred", 451],
          [2, "accepted", 250],
        ],
      );
      assert.equal(attempts[0].error_code, 13103);
      assert.match(attempts[0].error_message, /451 4\.3\.0 Greylisted, try again/);
      assert.match(attempts[0].response, /451/);

      const tries = sink.answered.filter((a) => a.messageId === accepted.message_id);
      assert.deepEqual(
        tries.map((t) => t.code),
        [451, 250],
      );
      assert.equal(tries[0]?.raw, tries[1]?.raw, "a retry sends the very same bytes");
      assert.equal(sink.count(accepted.message_id), 1);
    });

    test("a 5xx reply fails the message at once, with the relay's reply in error_message", async () => {
      sink.rules = { message: () => ({ code: 554, message: "5.7.1 Message refused: looks like spam" }) };
      const accepted = await send({ Subject: "refused" });
      const message = await waitForFinal(server, server.admin, accepted.sid);
      assert.equal(message.status, "failed");
      assert.equal(message.num_attempts, 1);
      assert.equal(message.error_code, 13101);
      assert.match(message.error_message, /554 5\.7\.1 Message refused: looks like spam/);
      assert.match(message.error_message, /permanently/);
      const [attempt] = await getAttempts(server, server.admin, accepted.sid);
      assert.equal(attempt.outcome, "rejected");
      assert.equal(attempt.smtp_code, 554);
    });

    test("a message over the relay's SIZE limit fails at once with 13109; the relay never gets it", async () => {
      const accepted = await send({ Subject: "too large", Body: "A line of text.\n".repeat(6000) });
      const message = await waitForFinal(server, server.admin, accepted.sid);
      assert.equal(message.status, "failed");
      assert.equal(message.num_attempts, 1);
      assert.equal(message.error_code, 13109);
      assert.match(
        message.error_message,
        /^The message is [\d,]+ bytes; the relay 127\.0\.0\.1:\d+ accepts at most 65,536 \(its SIZE limit\)\. Retrying will not help/,
      );
      const [attempt] = await getAttempts(server, server.admin, accepted.sid);
      assert.equal(attempt.outcome, "rejected");
      assert.equal(attempt.error_code, 13109);
      const recipients = attempt.recipients as Array<{ address: string; state: string }>;
      assert.deepEqual(
        recipients.map((r) => [r.address, r.state]),
        [["john.doe@yourcompany.com", "rejected"]],
      );
      assert.ok(!sink.answered.some((a) => a.messageId === accepted.message_id), "no DATA for it");
    });

    test("recipients refused one by one are recorded per recipient; the others get the message", async () => {
      sink.rules = {
        recipient: (address) =>
          address.startsWith("nobody@") ? { code: 550, message: "5.1.1 No such user here" } : undefined,
      };
      const accepted = await send({ To: "john@rcpt.example, nobody@rcpt.example", CC: "carl@rcpt.example" });
      const message = await waitForFinal(server, server.admin, accepted.sid);
      assert.equal(message.status, "sent");
      assert.equal(message.error_code, 13102);
      assert.match(message.error_message, /Delivered to 2 of 3 recipients/);
      assert.match(message.error_message, /nobody@rcpt\.example \("550 5\.1\.1 No such user here"\)/);

      const [attempt] = await getAttempts(server, server.admin, accepted.sid);
      assert.equal(attempt.outcome, "partial");
      const recipients = attempt.recipients as Array<{ address: string; state: string }>;
      assert.deepEqual(
        recipients.map((r) => [r.address, r.state]),
        [
          ["john@rcpt.example", "accepted"],
          ["nobody@rcpt.example", "rejected"],
          ["carl@rcpt.example", "accepted"],
        ],
      );
      const received = sink.received.filter((m) => m.messageId === accepted.message_id);
      assert.equal(received.length, 1);
      assert.deepEqual(received[0]?.to.sort(), ["carl@rcpt.example", "john@rcpt.example"]);
    });

    test("a recipient deferred with 4xx is retried alone; those who have it get no second copy", async () => {
      // The mailbox is full at the first RCPT TO only.
      let busy = true;
      sink.rules = {
        recipient: (address) => {
          if (!address.startsWith("busy@") || !busy) return undefined;
          busy = false;
          return { code: 452, message: "4.2.2 Mailbox full" };
        },
      };
      const accepted = await send({ To: "john@rcpt.example, busy@rcpt.example" });
      const message = await waitForFinal(server, server.admin, accepted.sid);
      assert.equal(message.status, "sent");
      assert.equal(message.error_code, undefined);
      const copies = sink.received.filter((m) => m.messageId === accepted.message_id);
      assert.deepEqual(
        copies.map((m) => m.to),
        [["john@rcpt.example"], ["busy@rcpt.example"]],
      );
      const attempts = await getAttempts(server, server.admin, accepted.sid);
      assert.deepEqual(
        attempts.map((a) => a.outcome),
        ["partial", "accepted"],
      );
    });

    test("temporary failures stop after MAILROOM_MAX_ATTEMPTS with an error that says so", async () => {
      sink.rules = { message: () => ({ code: 421, message: "4.7.0 Too busy, come back later" }) };
      const accepted = await send({ Subject: "never accepted" });
      const message = await waitForFinal(server, server.admin, accepted.sid);
      assert.equal(message.status, "failed");
      assert.equal(message.num_attempts, 4);
      assert.equal(message.error_code, 13106);
      assert.match(message.error_message, /MAILROOM_MAX_ATTEMPTS is 4/);
      assert.match(message.error_message, /421 4\.7\.0 Too busy, come back later/);
    });
  });
}

for (const variant of await storeVariants()) {
  describe(`a relay that keeps deferring, default attempt limit (${variant.kind})`, {
    skip: variant.skip,
  }, () => {
    let sink: SmtpSink;
    let server: TestServer;

    before(async () => {
      sink = await SmtpSink.start({
        rules: { message: () => ({ code: 451, message: "4.3.0 Try again later" }) },
      });
      // No MAILROOM_MAX_ATTEMPTS: only the age ends retrying, however many attempts fit in it.
      server = await startMailroom({
        store: variant.kind,
        env: {
          MAILROOM_SMTP_URL: sink.url,
          ...FAST_RETRIES,
          // Retries 25–50 ms apart for 6 s: room for far more than the old limit of 8 attempts, even
          // on a loaded machine where an attempt takes a few hundred milliseconds.
          MAILROOM_RETRY_BASE_MS: "50",
          MAILROOM_RETRY_MAX_MS: "50",
          MAILROOM_MAX_AGE_MS: "6000",
        },
      });
    });
    after(async () => {
      await server?.close();
      await sink?.stop();
    });

    test("retries until MAILROOM_MAX_AGE_MS, not for a fixed number of attempts (13107)", async () => {
      const response = await sendEmail(server, server.admin, { Subject: "deferred for good" });
      assert.equal(response.status, 200, response.text);
      const message = await waitForFinal(server, server.admin, response.json.sid);
      assert.equal(message.status, "failed");
      assert.equal(message.error_code, 13107, message.error_message);
      // The old default gave up after 8 attempts, long before the age limit.
      assert.ok(message.num_attempts > 8, `only ${message.num_attempts} attempts`);
      assert.match(message.error_message, /451 4\.3\.0 Try again later/);
    });
  });
}

/** The media type and charset as mailparser read them from the Content-Type header. */
function contentTypeOf(message: ReceivedMessage): [string, string | undefined] {
  const header = message.parsed.headers.get("content-type") as {
    value: string;
    params: { charset?: string };
  };
  return [header.value, header.params.charset?.toLowerCase()];
}
