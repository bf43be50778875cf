import assert from "node:assert/strict";
import { test } from "node:test";
import { type ReceivedMessage, SmtpSession } from "../bench/smtp-session.js";

// The bench sink's SMTP dialogue: what it reports per message is how a signing row proves its mail was signed.

function session(claim: () => boolean) {
  const received: ReceivedMessage[] = [];
  const smtp = new SmtpSession("sink.test", (message) => received.push(message), claim);
  const feed = (...chunks: string[]) =>
    chunks.map((chunk) => smtp.feed(Buffer.from(chunk, "latin1"))).join("");
  feed("EHLO client\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.net>\r\n");
  return { received, feed };
}

test("a message with a DKIM-Signature header counts as signed, one without does not", () => {
  const { received, feed } = session(() => false);
  feed(
    "DATA\r\n",
    "DKIM-Signature: v=1; a=rsa-sha256; d=example.com\r\n\tb=abc\r\nFrom: a@example.com\r\n\r\nHi\r\n.\r\n",
  );
  feed("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n");
  feed(
    "From: a@example.com\r\nX-Note: DKIM-Signature: not a field\r\n\r\nDKIM-Signature: in the body\r\n.\r\n",
  );
  assert.deepEqual(
    received.map((m) => m.signed),
    [true, false],
  );
  assert.equal(received[0]?.raw, undefined, "bytes are only kept when claimed");
});

test("a claimed message is kept whole, dot-stuffing undone, even when the terminator spans chunks", () => {
  let claims = 1;
  const { received, feed } = session(() => claims-- > 0);
  const replies = feed("DATA\r\n", "From: a@example.com\r\n\r\n..leading dot\r\nlast line\r\n.", "\r\n");
  assert.match(replies, /250 2\.0\.0 Ok: queued\r\n$/);
  assert.equal(
    received[0]?.raw?.toString("latin1"),
    "From: a@example.com\r\n\r\n.leading dot\r\nlast line\r\n",
  );
  feed(
    "MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.net>\r\nDATA\r\nFrom: a@example.com\r\n\r\nx\r\n.\r\n",
  );
  assert.equal(received.length, 2);
  assert.equal(received[1]?.raw, undefined, "only as many messages as claimed are kept");
});
