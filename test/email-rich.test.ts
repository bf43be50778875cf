import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { getMessage, waitForFinal } from "./helpers/delivery.js";
import { API, type Credentials, request, startMailroom, type TestServer } from "./helpers/mailroom.js";
import { decodeWords } from "./helpers/mime.js";
import { SmtpSink } from "./helpers/smtp-sink.js";
import { storeVariants } from "./helpers/stores.js";

const run = promisify(execFile);

/** Bytes from a fixed seed: the same every run, and not text. */
function seededBytes(length: number, seed = 7): Buffer {
  const bytes = Buffer.alloc(length);
  let x = seed;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    bytes[i] = x >> 16;
  }
  return bytes;
}

const sha256 = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex");
// A 1x1 PNG.
const PNG = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==",
  "base64",
);

for (const variant of await storeVariants()) {
  describe(`rich messages (${variant.kind})`, { skip: variant.skip }, () => {
    let sink: SmtpSink;
    let server: TestServer;
    let auth: Credentials;
    before(async () => {
      sink = await SmtpSink.start();
      server = await startMailroom({
        store: variant.kind,
        env: { MAILROOM_SMTP_URL: sink.url, MAILROOM_MAX_MESSAGE_BYTES: String(300 * 1024) },
      });
      auth = server.admin;
    });
    after(async () => {
      await server?.close();
      await sink?.stop();
    });
    const messages = () => `${API}/Accounts/${auth.sid}/Email/Messages`;
    const sendJson = (json: unknown) => request(server, "POST", `${messages()}.json`, { auth, json });
    const sendForm = (form: Record<string, string | string[]>) =>
      request(server, "POST", `${messages()}.json`, { auth, form });
    const delivered = async (sid: string) => {
      const message = await waitForFinal(server, auth, sid);
      assert.equal(message.status, "sent", message.error_message);
      const mail = sink.received.find((m) => m.messageId === message.message_id);
      assert.ok(mail, "the relay received the message");
      return { message, mail };
    };

    test("Html and Text: multipart/alternative, text first; all echoed back", async () => {
      const html = "<p>Hello <b>there</b></p>";
      const text = "Hello there";
      const sent = await sendJson({
        From: "a@x.test",
        To: "b@y.test",
        Subject: "Both",
        Html: html,
        Text: text,
      });
      assert.equal(sent.status, 200, sent.text);
      assert.equal(sent.json.html, html);
      assert.equal(sent.json.text, text);
      assert.ok(!("body" in sent.json) && !("type" in sent.json), "no Body, so no body or type");
      const { mail } = await delivered(sent.json.sid);
      assert.match(mail.raw, /Content-Type: multipart\/alternative/i);
      assert.ok(mail.raw.indexOf("text/plain") < mail.raw.indexOf("text/html"), "text part first");
      assert.equal(mail.parsed.html, html);
      assert.equal(mail.parsed.text?.trim(), text);
      const again = await getMessage(server, auth, sent.json.sid);
      assert.equal(again.html, html);
      assert.equal(again.text, text);
    });

    test("the README's one curl command: HTML+text, an attachment and a Reply-To, all delivered and shown", async (t) => {
      if (!(await run("curl", ["--version"]).catch(() => undefined))) return t.skip("curl is not installed");
      const dir = await mkdtemp(join(tmpdir(), "mailroom-curl-"));
      const pdf = Buffer.from("%PDF-1.4 an invoice\n");
      await writeFile(join(dir, "invoice.pdf"), pdf);
      try {
        const { stdout } = await run(
          "curl",
          [
            "-s",
            "-u",
            `${auth.sid}:${auth.token}`,
            `${server.url}${messages()}.json`,
            ...[
              "From=Jane <jane.doe@yourcompany.com>",
              "To=<john.doe@yourcompany.com>",
              "Subject=Your invoice",
            ]
              .concat(["Html=<p>Your invoice is attached.</p>", "Text=Your invoice is attached."])
              .concat(["ReplyTo=billing@yourcompany.com"])
              .flatMap((field) => ["--form-string", field]),
            "-F",
            "Attachment=@invoice.pdf",
          ],
          { cwd: dir },
        );
        const sent = JSON.parse(stdout);
        assert.equal(sent.reply_to, "billing@yourcompany.com");
        assert.equal(sent.attachments[0].filename, "invoice.pdf");
        const { message, mail } = await delivered(sent.sid);
        assert.equal(message.html, "<p>Your invoice is attached.</p>");
        assert.equal(mail.parsed.text?.trim(), "Your invoice is attached.");
        assert.equal(mail.parsed.html, "<p>Your invoice is attached.</p>");
        assert.equal(mail.parsed.replyTo?.text, "billing@yourcompany.com");
        assert.ok(mail.parsed.attachments[0]?.content.equals(pdf));
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    test("Html alone gets a text alternative derived from it", async () => {
      const sent = await sendJson({
        From: "a@x.test",
        To: "b@y.test",
        Subject: "Only HTML",
        Html: '<h1>Spring sale</h1><p>See <a href="https://shop.example/sale">the offers</a>.</p>',
      });
      assert.equal(sent.status, 200, sent.text);
      const { mail } = await delivered(sent.json.sid);
      assert.match(mail.raw, /multipart\/alternative/i);
      assert.match(mail.parsed.text ?? "", /spring sale/i);
      assert.match(mail.parsed.text ?? "", /https:\/\/shop\.example\/sale/);
    });

    test("ReplyTo, custom headers and tags (form body) round-trip; the tag filter finds the message", async () => {
      const sent = await sendForm({
        From: "Sender <a@x.test>",
        To: "<bob@y.test>",
        Subject: "Extras",
        Body: "<p>hi</p>",
        Type: "text/html",
        ReplyTo: ["Help Desk <help@x.test>", "<other@x.test>"],
        Headers: JSON.stringify({ "X-Campaign": "spring", "X-Note": "Grüße =?utf-8?q?x?=" }),
        Tags: JSON.stringify({ campaign: "spring-2026", tier: "gold" }),
      });
      assert.equal(sent.status, 200, sent.text);
      assert.equal(sent.json.to, "<bob@y.test>", "a bracketed address keeps its brackets");
      assert.equal(sent.json.reply_to, "Help Desk <help@x.test>, <other@x.test>");
      assert.deepEqual(sent.json.headers, { "X-Campaign": "spring", "X-Note": "Grüße =?utf-8?q?x?=" });
      assert.deepEqual(sent.json.tags, { campaign: "spring-2026", tier: "gold" });
      const { mail } = await delivered(sent.json.sid);
      assert.match(mail.raw, /^To: <bob@y\.test>\r$/m, "bracketed in the header too");
      assert.deepEqual(
        mail.parsed.replyTo?.value.map((v) => v.address),
        ["help@x.test", "other@x.test"],
      );
      assert.equal(mail.parsed.headers.get("x-campaign"), "spring");
      // mailparser leaves custom headers encoded: decoded, the value reads as sent.
      assert.equal(decodeWords(String(mail.parsed.headers.get("x-note"))), "Grüße =?utf-8?q?x?=");

      const list = await request(server, "GET", `${messages()}.json?Tag=campaign:spring-2026&Tag=tier:gold`, {
        auth,
      });
      assert.equal(list.status, 200, list.text);
      assert.deepEqual(
        list.json.messages.map((m: { sid: string }) => m.sid),
        [sent.json.sid],
      );
      assert.match(list.json.next_page_uri ?? list.json.uri, /Tag=campaign%3Aspring-2026&Tag=tier%3Agold/);
      const none = await request(server, "GET", `${messages()}.json?Tag=campaign:autumn`, { auth });
      assert.equal(none.json.total, 0);
      const xml = await request(server, "GET", `${messages()}/${sent.json.sid}`, { auth });
      assert.match(xml.text, /<Tags><Tag><Name>campaign<\/Name><Value>spring-2026<\/Value><\/Tag>/);
    });

    test("attachments from multipart and JSON arrive byte for byte; identical bytes share one digest", async () => {
      const binary = seededBytes(100 * 1024);
      const form = new FormData();
      form.append("From", "a@x.test");
      form.append("To", "b@y.test");
      form.append("Subject", "Files");
      form.append("Text", "see attached");
      form.append(
        "Attachment",
        new Blob([new Uint8Array(binary)], { type: "application/octet-stream" }),
        "data.bin",
      );
      form.append("Attachment", new Blob(["a,b\n1,2\n"], { type: "text/csv" }), "Überweisung – März.csv");
      const sent = await request(server, "POST", `${messages()}.json`, { auth, multipart: form });
      assert.equal(sent.status, 200, sent.text);
      assert.deepEqual(
        sent.json.attachments.map((a: { filename: string; size: number }) => [a.filename, a.size]),
        [
          ["data.bin", binary.length],
          ["Überweisung – März.csv", 8],
        ],
      );
      assert.equal(sent.json.attachments[0].sha256, sha256(binary));
      const { mail } = await delivered(sent.json.sid);
      assert.equal(mail.parsed.attachments.length, 2);
      assert.ok(
        mail.parsed.attachments[0]?.content.equals(binary),
        "the bytes after delivery are the bytes sent",
      );
      assert.equal(mail.parsed.attachments[1]?.filename, "Überweisung – März.csv");
      assert.match(mail.raw, /filename\*/, "the non-ASCII name is encoded per RFC 2231");

      const download = await fetch(`${server.url}${messages()}/${sent.json.sid}/Attachments/0`, {
        headers: { authorization: `Basic ${Buffer.from(`${auth.sid}:${auth.token}`).toString("base64")}` },
      });
      assert.equal(download.status, 200);
      assert.ok(Buffer.from(await download.arrayBuffer()).equals(binary));
      assert.match(download.headers.get("content-disposition") ?? "", /^attachment; filename="data.bin"/);
      const missing = await request(server, "GET", `${messages()}/${sent.json.sid}/Attachments/2.json`, {
        auth,
      });
      assert.equal(missing.status, 404);
      assert.equal(missing.json.code, 13030);

      const viaJson = await sendJson({
        From: "a@x.test",
        To: "b@y.test",
        Subject: "Same file, JSON",
        Text: "again",
        Attachments: [{ Filename: "copy.bin", Content: binary.toString("base64") }],
      });
      assert.equal(viaJson.status, 200, viaJson.text);
      assert.equal(viaJson.json.attachments[0].sha256, sha256(binary));
      assert.equal(viaJson.json.attachments[0].content_type, "application/octet-stream");
      const second = await delivered(viaJson.json.sid);
      assert.ok(second.mail.parsed.attachments[0]?.content.equals(binary));
    });

    test("an inline image with ContentId is a related part the HTML refers to", async () => {
      const sent = await sendJson({
        From: "a@x.test",
        To: "b@y.test",
        Subject: "Logo",
        Html: '<p><img src="cid:logo@x.test"> Hi</p>',
        Attachments: [
          {
            Filename: "logo.png",
            Content: PNG.toString("base64"),
            ContentType: "image/png",
            ContentId: "logo@x.test",
          },
        ],
      });
      assert.equal(sent.status, 200, sent.text);
      assert.equal(sent.json.attachments[0].content_id, "logo@x.test");
      const { mail } = await delivered(sent.json.sid);
      assert.match(mail.raw, /multipart\/related/i);
      assert.match(mail.raw, /Content-ID: <logo@x\.test>/i);
      const image = mail.parsed.attachments.find((a) => a.contentId === "<logo@x.test>");
      assert.ok(image?.content.equals(PNG));
      assert.equal(image?.related, true);
    });

    test("refused: unknown parameters (with the one meant), wrong JSON types, owned headers, CR/LF", async () => {
      const base = { From: "a@x.test", To: "b@y.test", Subject: "s", Body: "b" };
      const cases: Array<
        [string, Promise<{ status: number; json: { code: number; message: string } }>, number, RegExp]
      > = [
        ["Cc", sendForm({ ...base, Cc: "c@y.test" }), 20009, /"Cc".*Did you mean "CC"/],
        ["Reply-To", sendJson({ ...base, "Reply-To": "r@x.test" }), 20009, /Did you mean "ReplyTo"/],
        ["number Subject", sendJson({ ...base, Subject: 123 }), 20010, /Subject must be text, not a number/],
        ["object Body", sendJson({ ...base, Body: { a: 1 } }), 20010, /Body must be text/],
        [
          "repeated Subject",
          sendForm({ ...base, Subject: ["a", "b"] }),
          20010,
          /Subject must be text, not a list/,
        ],
        [
          "From header",
          sendJson({ ...base, Headers: { From: "x@evil.test" } }),
          13025,
          /"From" is written by Mailroom/,
        ],
        [
          "Content-Type header",
          sendJson({ ...base, Headers: { "content-type": "text/x" } }),
          13025,
          /written by Mailroom/,
        ],
        [
          "CRLF in header",
          sendJson({ ...base, Headers: { "X-A": "a\r\nBcc: v@x.test" } }),
          13015,
          /line break/,
        ],
        ["bad header name", sendJson({ ...base, Headers: { "X A": "1" } }), 13024, /not valid/],
        ["Headers not JSON (form)", sendForm({ ...base, Headers: "X-A: 1" }), 20010, /JSON object/],
        [
          "eleven tags",
          sendJson({
            ...base,
            Tags: Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`t${i}`, "v"])),
          }),
          20010,
          /at most 10/,
        ],
        ["Body and Html", sendJson({ ...base, Html: "<p>x</p>" }), 13022, /either Body/],
        [
          "bad base64",
          sendJson({ ...base, Attachments: [{ Filename: "a.txt", Content: "no*base64" }] }),
          13027,
          /not valid base64/,
        ],
        [
          "CR/LF filename",
          sendJson({ ...base, Attachments: [{ Filename: "a\r\n.txt", Content: "YQ==" }] }),
          13027,
          /file name/,
        ],
        [
          "exe by name",
          sendJson({ ...base, Attachments: [{ Filename: "run.exe", Content: "YQ==" }] }),
          13028,
          /\.exe/,
        ],
        [
          "exe by bytes",
          sendJson({
            ...base,
            Attachments: [
              {
                Filename: "invoice.pdf",
                Content: Buffer.from(
                  "MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00PE\x00\x00",
                  "latin1",
                ).toString("base64"),
              },
            ],
          }),
          13028,
          /content is a exe/,
        ],
        [
          "a list with a number in it",
          sendJson({ ...base, To: ["b@y.test", 5] }),
          20010,
          /To\[1\] must be text, not a number/,
        ],
        [
          "lower-case from",
          sendForm({ from: "a@x.test", To: "b@y.test", Subject: "s", Body: "b" }),
          13001,
          /^From can not be null\. \(Parameter names are case-sensitive: send "From", not "from"\.\)$/,
        ],
        [
          "unknown attachment field",
          sendJson({ ...base, Attachments: [{ Filename: "a.txt", Content: "YQ==", Name: "x" }] }),
          20009,
          /in Attachments\[0\]/,
        ],
      ];
      for (const [name, pending, code, message] of cases) {
        const response = await pending;
        assert.equal(response.status, 400, name);
        assert.equal(response.json.code, code, `${name}: ${response.json.message}`);
        assert.match(response.json.message, message, name);
      }
    });

    test("multipart: a file part of another name is unknown, a text Attachment is refused, a path-like name is kept as sent", async () => {
      const base = () => {
        const form = new FormData();
        for (const [k, v] of Object.entries({ From: "a@x.test", To: "b@y.test", Subject: "mp", Text: "x" })) {
          form.append(k, v);
        }
        return form;
      };
      const other = base();
      other.append("File", new Blob(["a"]), "a.txt");
      const refusedName = await request(server, "POST", `${messages()}.json`, { auth, multipart: other });
      assert.equal(refusedName.status, 400);
      assert.equal(refusedName.json.code, 20009);
      assert.match(refusedName.json.message, /"File".*"Attachment"/);
      const textPart = base();
      textPart.append("Attachment", "not a file");
      const refusedText = await request(server, "POST", `${messages()}.json`, { auth, multipart: textPart });
      assert.equal(refusedText.json.code, 13027);
      const pathLike = base();
      pathLike.append("Attachment", new Blob(["a"], { type: "text/plain" }), "../../etc/notes.txt");
      const kept = await request(server, "POST", `${messages()}.json`, { auth, multipart: pathLike });
      assert.equal(kept.status, 200, kept.text);
      assert.equal(
        kept.json.attachments[0].filename,
        "../../etc/notes.txt",
        "a name, never a path: kept as sent",
      );
      const { mail } = await delivered(kept.json.sid);
      assert.equal(mail.parsed.attachments[0]?.filename, "../../etc/notes.txt");
    });

    test("attachments over MAILROOM_MAX_MESSAGE_BYTES: 413 naming the limit, nothing stored", async () => {
      const big = seededBytes(301 * 1024);
      const viaJson = await sendJson({
        From: "a@x.test",
        To: "b@y.test",
        Subject: "too big",
        Text: "x",
        Attachments: [{ Filename: "big.bin", Content: big.toString("base64") }],
      });
      assert.equal(viaJson.status, 413);
      assert.equal(viaJson.json.code, 13029);
      assert.match(viaJson.json.message, /307200 \(MAILROOM_MAX_MESSAGE_BYTES\)/);
      const form = new FormData();
      for (const [k, v] of Object.entries({
        From: "a@x.test",
        To: "b@y.test",
        Subject: "too big",
        Text: "x",
      }))
        form.append(k, v);
      form.append("Attachment", new Blob([new Uint8Array(big)]), "big.bin");
      const viaMultipart = await request(server, "POST", `${messages()}.json`, { auth, multipart: form });
      assert.equal(viaMultipart.status, 413);
      assert.equal(viaMultipart.json.code, 13029);
      const list = await request(server, "GET", `${messages()}.json?PageSize=1000`, { auth });
      assert.ok(!list.json.messages.some((m: { subject: string }) => m.subject === "too big"));
    });

    test("unknown query parameters are refused too, on lists and single resources", async () => {
      const list = await request(server, "GET", `${messages()}.json?Statuss=sent`, { auth });
      assert.equal(list.status, 400);
      assert.equal(list.json.code, 20009);
      assert.match(list.json.message, /"Statuss" in the query\. Did you mean "Status"\?/);
      const one = await request(server, "GET", `${messages()}/EM0123456789abcdef0123456789abcdef.json?x=1`, {
        auth,
      });
      assert.equal(one.status, 400);
      assert.match(one.json.message, /"x" in the query\. This takes none there\./);
    });

    test("a JSON null is an absent parameter", async () => {
      const sent = await sendJson({
        From: "a@x.test",
        To: "b@y.test",
        Subject: "s",
        Body: "b",
        CC: null,
        Tags: null,
      });
      assert.equal(sent.status, 200, sent.text);
      assert.ok(!("cc" in sent.json) && !("tags" in sent.json));
      const missing = await sendJson({ From: "a@x.test", To: null, Subject: "s", Body: "b" });
      assert.equal(missing.status, 400);
      assert.equal(missing.json.message, "To can not be null.");
    });

    test("a body of another type gets 415 naming the type sent", async () => {
      const response = await request(server, "POST", `${messages()}.json`, {
        auth,
        body: "From=a@x.test",
        headers: { "content-type": "text/csv" },
      });
      assert.equal(response.status, 415);
      assert.match(response.json.message, /Content-Type "text\/csv" is not supported/);
    });
  });
}
