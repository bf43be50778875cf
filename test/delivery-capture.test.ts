import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { simpleParser } from "mailparser";
import { getAttempts, waitForFinal } from "./helpers/delivery.js";
import { API, request, sendEmail, startMailroom, type TestServer } from "./helpers/mailroom.js";
import { storeVariants } from "./helpers/stores.js";

for (const variant of await storeVariants()) {
  describe(`capture transport, the default without a relay (${variant.kind})`, { skip: variant.skip }, () => {
    let server: TestServer;
    before(async () => {
      server = await startMailroom({ store: variant.kind });
    });
    after(async () => {
      await server?.close();
    });

    test("the Restcomm example becomes sent, and its MIME is served as message/rfc822", async () => {
      const accepted = (
        await sendEmail(server, server.admin, { CC: "carl@example.org", BCC: "secret@example.org" })
      ).json;
      const message = await waitForFinal(server, server.admin, accepted.sid);
      assert.equal(message.status, "sent");
      assert.equal(message.num_attempts, 1);

      const mime = await request(
        server,
        "GET",
        `${API}/Accounts/${server.admin.sid}/Email/Messages/${accepted.sid}/Mime`,
        { auth: server.admin },
      );
      assert.equal(mime.status, 200);
      assert.match(mime.headers.get("content-type") ?? "", /^message\/rfc822/);
      const parsed = await simpleParser(mime.text);
      assert.equal(parsed.messageId, accepted.message_id);
      assert.equal(parsed.subject, "Test Email");
      assert.equal(parsed.text?.trimEnd(), "This is a test");
      assert.match(mime.text, /^Cc: carl@example\.org\r$/m);
      assert.doesNotMatch(mime.text, /secret@example\.org/, "BCC never appears in the message");
      assert.ok(mime.text.includes("\r\n") && !/[^\r]\n/.test(mime.text), "CRLF line ends throughout");

      const [attempt] = await getAttempts(server, server.admin, accepted.sid);
      assert.equal(attempt.outcome, "accepted");
      assert.match(attempt.response, /^captured/);
      const recipients = attempt.recipients as Array<{ address: string; state: string }>;
      assert.deepEqual(
        recipients.map((r) => [r.address, r.state]),
        [
          ["john.doe@yourcompany.com", "accepted"],
          ["carl@example.org", "accepted"],
          ["secret@example.org", "accepted"],
        ],
      );
    });
  });
}
