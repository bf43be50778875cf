import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { simpleParser } from "mailparser";
import { getAttempts, waitForFinal } from "./helpers/delivery.js";
import { API, request, sendEmail, startMailroom, type TestServer } from "./helpers/mailroom.js";

/**
 * What a hostile caller can put in header-bound fields without line breaks: quotes, commas, angle
 * brackets, encoded-word look-alikes. None of it may add a header or a recipient to the composed message.
 */
describe("user input never escapes its header", () => {
  let server: TestServer;
  before(async () => {
    server = await startMailroom();
  });
  after(async () => {
    await server?.close();
  });

  const mimeOf = async (sid: string) => {
    await waitForFinal(server, server.admin, sid);
    const response = await request(
      server,
      "GET",
      `${API}/Accounts/${server.admin.sid}/Email/Messages/${sid}/Mime`,
      {
        auth: server.admin,
      },
    );
    assert.equal(response.status, 200);
    return response.text;
  };
  const headerNames = (mime: string) =>
    mime
      .slice(0, mime.indexOf("\r\n\r\n"))
      .split("\r\n")
      .filter((line) => /^[A-Za-z-]+:/.test(line))
      .map((line) => line.slice(0, line.indexOf(":")).toLowerCase());

  test("tricky display names and subjects stay inside their own header", async () => {
    const sent = await sendEmail(server, server.admin, {
      From: '"Eve \\" Bcc: victim@evil.example" <eve@example.org>',
      To: '"To: boss@example.org, Bcc: x@evil.example" <real@example.org>',
      Subject: "=?utf-8?Q?Bcc:_injected@evil.example?= Hello: World, <b@evil.example>",
      Body: "Bcc: body-only@evil.example\r\n\r\nSecond paragraph",
    });
    assert.equal(sent.status, 200, sent.text);
    const mime = await mimeOf(sent.json.sid);
    const names = headerNames(mime);
    assert.ok(!names.includes("bcc"), `no Bcc header: ${names.join(", ")}`);
    for (const single of ["from", "to", "subject", "message-id", "date"]) {
      assert.equal(names.filter((n) => n === single).length, 1, `exactly one ${single} header`);
    }

    const parsed = await simpleParser(mime);
    assert.deepEqual(
      parsed.from?.value.map((a) => a.address),
      ["eve@example.org"],
    );
    const to = Array.isArray(parsed.to) ? parsed.to.flatMap((t) => t.value) : (parsed.to?.value ?? []);
    assert.deepEqual(
      to.map((a) => a.address),
      ["real@example.org"],
    );
    // An encoded-word look-alike in a Subject is passed through as text, so a reader's client may
    // decode it for display; it still cannot leave the Subject header or add a recipient.
    assert.match(parsed.subject ?? "", /Hello: World, <b@evil\.example>$/);
    assert.equal(parsed.bcc, undefined);
    assert.equal(parsed.cc, undefined);
    assert.match(parsed.text ?? "", /^Bcc: body-only@evil\.example/, "the body keeps its text as text");

    const [attempt] = await getAttempts(server, server.admin, sent.json.sid);
    const recipients = (attempt.recipients as Array<{ address: string }>).map((r) => r.address);
    assert.deepEqual(recipients, ["real@example.org"], "the envelope has only the real recipient");
  });
});
