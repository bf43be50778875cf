import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { XMLValidator } from "fast-xml-parser";
import { getAttempts, waitForFinal } from "./helpers/delivery.js";
import {
  API,
  type ApiResponse,
  basicAuth,
  request,
  sendEmail,
  startMailroom,
  type TestServer,
} from "./helpers/mailroom.js";
import { storeVariants } from "./helpers/stores.js";

/**
 * Issue 12, items 9–14: what a client sends is read exactly as written or refused with a coded 400 that
 * names the parameter, and no error quotes back more than a bounded part of it.
 */
for (const variant of await storeVariants()) {
  describe(`input is read exactly or refused (${variant.kind})`, { skip: variant.skip }, () => {
    let server: TestServer;
    before(async () => {
      server = await startMailroom({ store: variant.kind });
    });
    after(async () => {
      await server?.close();
    });
    const messages = () => `${API}/Accounts/${server.admin.sid}/Email/Messages`;
    const base = { From: "a@example.org", To: "b@example.org", Body: "x", Subject: "y" };
    /** A body as raw bytes, sent as they are (fetch would encode a string as UTF-8). */
    const post = async (contentType: string, bytes: Buffer, path = `${messages()}.json`) => {
      const response = await fetch(server.url + path, {
        method: "POST",
        headers: { authorization: basicAuth(server.admin), "content-type": contentType },
        body: new Blob([new Uint8Array(bytes)]),
      });
      const text = await response.text();
      return { status: response.status, text, json: JSON.parse(text) } as Pick<
        ApiResponse,
        "status" | "text" | "json"
      >;
    };
    const sendJson = (fields: Record<string, unknown>) =>
      request(server, "POST", `${messages()}.json`, { auth: server.admin, json: { ...base, ...fields } });
    const refused = (
      response: Pick<ApiResponse, "status" | "json" | "text">,
      code: number,
      message: RegExp,
    ) => {
      assert.equal(response.status, 400, response.text.slice(0, 300));
      assert.equal(response.json.code, code, response.json.message);
      assert.match(response.json.message, message);
    };

    test("item 9: errors quote at most ~100 characters of what was sent, and long lists are refused unread", async () => {
      const huge = "x".repeat(90_000);
      const cases: Array<[Promise<ApiResponse>, number]> = [
        [sendEmail(server, server.admin, { To: huge }), 13011],
        [sendEmail(server, server.admin, { To: `${huge}@example.org` }), 13011],
        [sendEmail(server, server.admin, { To: "x".repeat(5 * 1024 * 1024) }), 13011],
        [sendEmail(server, server.admin, { From: huge }), 13010],
        [sendEmail(server, server.admin, { Type: huge }), 13016],
        [sendEmail(server, server.admin, { Subject: huge }), 13014],
        [sendEmail(server, server.admin, { StatusCallback: huge }), 13019],
        [sendEmail(server, server.admin, { Headers: JSON.stringify({ [huge]: "v" }) }), 13024],
        [sendEmail(server, server.admin, { Tags: JSON.stringify({ [huge]: "v" }) }), 13026],
        [sendEmail(server, server.admin, { [huge]: "v" }), 20009],
        [sendJson({ Headers: { "X-A": 5, [huge]: 1 } }), 20010],
        [
          request(server, "GET", `${messages()}.json?Status=${"s".repeat(10_000)}`, { auth: server.admin }),
          20008,
        ],
        [
          request(server, "GET", `${messages()}.json?StartTime=${"s".repeat(10_000)}`, {
            auth: server.admin,
          }),
          20008,
        ],
      ];
      for (const [pending, code] of cases) {
        const response = await pending;
        assert.equal(response.json.code, code, response.text.slice(0, 300));
        assert.ok(response.text.length < 1000, `${code}: a ${response.text.length}-character answer`);
      }
      const quoted = await sendEmail(server, server.admin, { To: `${huge}@example.org` });
      assert.match(
        quoted.json.message,
        /^To is invalid: "x{100}…" \(90012 characters\) is not a valid email address\.$/,
      );
      const long = await sendEmail(server, server.admin, { To: "a@example.org, ".repeat(10_000) });
      refused(
        long,
        13011,
        /^To is 150000 characters long; a list of at most 100 addresses needs no more than 100000\.$/,
      );
      const many = await sendEmail(server, server.admin, {
        To: Array.from({ length: 60 }, (_, i) => `t${i}@example.org`).join(", "),
        CC: Array.from({ length: 60 }, (_, i) => `c${i}@example.org`),
      });
      refused(many, 13017, /at most 100 recipients in To, CC and BCC together; CC goes past that/);
      const name = await sendEmail(server, server.admin, { To: `"${"n".repeat(257)}" <a@example.org>` });
      refused(name, 13011, /display name of <a@example\.org> is 257 characters long; the maximum is 256/);
      const local = await sendEmail(server, server.admin, { To: `${"l".repeat(65)}@example.org` });
      refused(local, 13011, /is not a valid email address/);
    });

    test("item 10: an address list that could mean something else is refused, not reinterpreted", async () => {
      const cases: Array<[string, RegExp]> = [
        [
          "Bob <rcpt@x.org<evil@attacker.com>>",
          /"rcpt@x\.org<evil@attacker\.com" is not a valid email address/,
        ],
        ["Bob <a@x.org> <b@y.org>", /"<b@y\.org>" follows "Bob <a@x\.org>"; separate addresses with commas/],
        ["rcpt@[999.1.1.1]", /"rcpt@\[999\.1\.1\.1\]" is not a valid email address/],
        ["a@x.org <b@y.org>", /has "@" outside quotes/],
        ["Bob (the boss) <b@y.org>", /comments in parentheses are not supported/],
      ];
      for (const [to, message] of cases)
        refused(await sendEmail(server, server.admin, { To: to }), 13011, message);
      // A + sent unencoded in a form body is a space: the address it leaves is refused, with the reason.
      const raw = await post(
        "application/x-www-form-urlencoded",
        Buffer.from("From=a%40example.org&To=r+cpt@x.org&Body=x&Subject=y"),
      );
      refused(
        raw,
        13011,
        /"r cpt@x\.org" is not a valid email address \(if it was "r\+cpt@x\.org": a "\+" sent unencoded/,
      );

      const kept = await sendEmail(server, server.admin, {
        From: '"Bob, Jr." <bob@x.test>',
        To: "bob@x.test, <carol@x.test>, Dan <dan@x.test>, Zoë Ölund <zoe@x.test>, rcpt@[192.0.2.1]",
        CC: ["c1@x.test", "Cee <c2@x.test>"],
        BCC: ["b1@x.test", "b2@x.test"],
      });
      assert.equal(kept.status, 200, kept.text);
      assert.equal(kept.json.from, '"Bob, Jr." <bob@x.test>');
      assert.equal(
        kept.json.to,
        'bob@x.test, <carol@x.test>, Dan <dan@x.test>, "Zoë Ölund" <zoe@x.test>, rcpt@[192.0.2.1]',
      );
      assert.equal(kept.json.cc, "c1@x.test, Cee <c2@x.test>");
      assert.equal(kept.json.bcc, "b1@x.test, b2@x.test");
      await waitForFinal(server, server.admin, kept.json.sid);
      const [attempt] = await getAttempts(server, server.admin, kept.json.sid);
      const envelope = (attempt.recipients as Array<{ address: string }>).map((r) => r.address).sort();
      assert.deepEqual(envelope, [
        "b1@x.test",
        "b2@x.test",
        "bob@x.test",
        "c1@x.test",
        "c2@x.test",
        "carol@x.test",
        "dan@x.test",
        "rcpt@[192.0.2.1]",
        "zoe@x.test",
      ]);
    });

    test("item 11: a JSON key given twice, at any depth, is refused with the key named", async () => {
      const body = (text: string) => post("application/json", Buffer.from(text));
      refused(
        await body(
          '{"From":"a@example.org","To":"b@example.org","Body":"x","Subject":"y","From":"evil@example.org"}',
        ),
        20012,
        /^The key "From" is given twice in the body\./,
      );
      refused(
        await body(
          '{"From":"a@example.org","To":"b@example.org","Body":"x","Subject":"y","Headers":{"X-A":"1","X-A":"2"}}',
        ),
        20012,
        /^The key "X-A" is given twice in Headers\./,
      );
      refused(
        await body(
          '{"From":"a@example.org","To":"b@example.org","Body":"x","Subject":"y","Attachments":[{"Filename":"a.txt","Content":"eA==","Filename":"b.txt"}]}',
        ),
        20012,
        /^The key "Filename" is given twice in Attachments\[0\]\./,
      );
      refused(
        await body('{"From":"a@example.org","\\u0046rom":"evil@example.org"}'),
        20012,
        /"From" is given twice/,
      );
      // In the JSON text of a form's Headers too; and on every route (an account update).
      refused(
        await sendEmail(server, server.admin, { Tags: '{"kind":"a","kind":"b"}' }),
        20012,
        /^The key "kind" is given twice in Tags\./,
      );
      const account = await request(server, "POST", `${API}/Accounts/${server.admin.sid}.json`, {
        auth: server.admin,
        body: '{"FriendlyName":"a","FriendlyName":"b"}',
        headers: { "content-type": "application/json" },
      });
      refused(account, 20012, /"FriendlyName" is given twice/);
      // The same key in two objects is no duplicate.
      const fine = await sendJson({ Headers: { "X-Kind": "a" }, Tags: { "X-Kind": "b" } });
      assert.equal(fine.status, 200, fine.text);
    });

    test("item 12: text that is not UTF-8 is refused, naming the parameter, never stored as U+FFFD", async () => {
      const form = (tail: string) =>
        Buffer.concat([
          Buffer.from("From=a%40example.org&To=b%40example.org&Body=x&"),
          Buffer.from(tail, "latin1"),
        ]);
      refused(
        await post("application/x-www-form-urlencoded", form("Subject=caf%E9")),
        20011,
        /^Subject is not valid UTF-8/,
      );
      refused(
        await post("application/x-www-form-urlencoded", form("Subject=caf\xe9")),
        20011,
        /^Subject is not valid UTF-8 \(byte 0xE9/,
      );
      const json = Buffer.concat([
        Buffer.from('{"From":"a@example.org","To":"b@example.org","Body":"x","Headers":{"X-A":"caf'),
        Buffer.from([0xe9]),
        Buffer.from('"},"Subject":"y"}'),
      ]);
      refused(
        await post("application/json", json),
        20011,
        /^Headers\["X-A"\] is not valid UTF-8 \(byte 0xE9 at offset 77 of the body\)/,
      );
      const multipart = Buffer.concat([
        Buffer.from(
          '--b\r\nContent-Disposition: form-data; name="From"\r\n\r\na@example.org\r\n--b\r\nContent-Disposition: form-data; name="To"\r\n\r\nb@example.org\r\n--b\r\nContent-Disposition: form-data; name="Body"\r\n\r\nx\r\n--b\r\nContent-Disposition: form-data; name="Subject"\r\n\r\ncaf',
        ),
        Buffer.from([0xe9]),
        Buffer.from("\r\n--b--\r\n"),
      ]);
      refused(
        await post("multipart/form-data; boundary=b", multipart),
        20011,
        /^Subject is not valid UTF-8 \(it holds U\+FFFD/,
      );
      const good = await post("application/x-www-form-urlencoded", form("Subject=caf%C3%A9+%F0%9F%8E%89"));
      assert.equal(good.status, 200, good.text);
      assert.equal(good.json.subject, "café 🎉");
    });

    test("item 13: what XML 1.0 cannot carry is refused at input, naming the parameter; the XML list stays readable", async () => {
      const cases: Array<[Record<string, unknown>, number, RegExp]> = [
        [{ Subject: "a\ufffeb" }, 13031, /^Subject contains the non-character U\+FFFE/],
        [{ Body: "a\uffffb" }, 13031, /^Body contains the non-character U\+FFFF/],
        [{ Body: "a\ud800b" }, 13031, /^Body contains an unpaired surrogate \(U\+D800\)/],
        [{ Body: "a\u{10ffff}b" }, 13031, /^Body contains the non-character U\+10FFFF/],
        [{ Body: "a\ufdd0b" }, 13031, /^Body contains the non-character U\+FDD0/],
        [{ Html: "<p>\udfff</p>", Body: undefined }, 13031, /^Html contains an unpaired surrogate/],
        [{ Body: "bell\u0007" }, 13018, /^Body contains a control character \(U\+0007\)/],
        [{ From: "Bo\uffffb <a@example.org>" }, 13031, /^From contains the non-character U\+FFFF/],
        [{ To: ["b@example.org", "C\ud83d <c@example.org>"] }, 13031, /^To contains an unpaired surrogate/],
        [{ Headers: { "X-A": "v\ufffe" } }, 13031, /^Header "X-A" contains the non-character U\+FFFE/],
        [{ Tags: { kind: "v\uffff" } }, 13031, /^Tag "kind" contains the non-character U\+FFFF/],
        [
          { Attachments: [{ Filename: "a\ufffe.txt", Content: "eA==" }] },
          13031,
          /^The file name of attachment 0 contains the non-character U\+FFFE/,
        ],
      ];
      for (const [fields, code, message] of cases) refused(await sendJson(fields), code, message);
      refused(
        await sendEmail(server, server.admin, { Subject: "a\uffffb" }),
        13031,
        /^Subject contains the non-character U\+FFFF/,
      );
      const account = await request(server, "POST", `${API}/Accounts/${server.admin.sid}.json`, {
        auth: server.admin,
        form: { FriendlyName: "Bob\uffff" },
      });
      refused(account, 10008, /^FriendlyName contains the non-character U\+FFFF/);
      // Line breaks and tabs stay welcome in the texts, astral characters everywhere.
      const fine = await sendJson({ Subject: "🎉 ok", Body: "a\tb\r\nc 🎉", From: "Zoë 🎉 <a@example.org>" });
      assert.equal(fine.status, 200, fine.text);
      const list = await request(server, "GET", messages(), { auth: server.admin });
      assert.equal(XMLValidator.validate(list.text), true, "the account's XML list is well-formed");
      // An error quoting such a character escapes it, so the XML error itself stays well-formed.
      const unknown = await request(server, "POST", messages(), {
        auth: server.admin,
        form: { ...base, "X\uffff": "1" },
      });
      assert.equal(unknown.status, 400);
      assert.equal(XMLValidator.validate(unknown.text), true, unknown.text);
      assert.match(unknown.text, /Unknown parameter &quot;X\\uffff&quot;/);
    });

    test("a multipart part the parser cannot read refuses the body: it is never dropped silently", async () => {
      const part = (headers: string, value: string) => `--b\r\n${headers}\r\n\r\n${value}\r\n`;
      const named = (name: string, value: string) =>
        part(`Content-Disposition: form-data; name="${name}"`, value);
      const required =
        named("From", "a@example.org") +
        named("To", "b@example.org") +
        named("Subject", "s") +
        named("Body", "x");
      const cases = [
        // A bare line break inside a header value, in a field and in a file's name.
        named("C\nC", "c@example.org"),
        part(
          'Content-Disposition: form-data; name="Attachment"; filename="a\nb.txt"\r\nContent-Type: text/plain',
          "file",
        ),
      ];
      for (const bad of cases) {
        const body = Buffer.from(`${required}${bad}--b--\r\n`);
        const response = await post("multipart/form-data; boundary=b", body);
        assert.equal(response.status, 400, `${JSON.stringify(bad)}: ${response.text}`);
        assert.equal(response.json.code, 20001);
        assert.match(response.json.message, /has 5 parts but only 4 could be read/);
      }
      // A part without a name (busboy hands it over nameless: this crashed the server).
      for (const orphan of [
        part("Content-Disposition: form-data", "orphan"),
        part('Content-Disposition: form-data; filename="f.txt"', "orphan file"),
      ]) {
        const response = await post(
          "multipart/form-data; boundary=b",
          Buffer.from(`${required}${orphan}--b--\r\n`),
        );
        assert.equal(response.status, 400, response.text);
        assert.equal(response.json.code, 20001);
        assert.match(response.json.message, /has no name/);
      }
      // The same parts, well formed, and the boundary quoted in the Content-Type: accepted, every part read.
      const good = `${required}${named("CC", "c@example.org")}${part('Content-Disposition: form-data; name="Attachment"; filename="a b.txt"\r\nContent-Type: text/plain', "file")}--b--\r\n`;
      const accepted = await post('multipart/form-data; boundary="b"', Buffer.from(good));
      assert.equal(accepted.status, 200, accepted.text);
      assert.equal(accepted.json.cc, "c@example.org");
      assert.equal(accepted.json.attachments.length, 1);
    });

    test("item 14: StatusCallback controls are refused, not stripped; U+0085 in From gets its real reason", async () => {
      for (const [callback, what] of [
        ["https://hooks.example.org/cb\r\nx", /the control character U\+000D/],
        ["https://hooks.example.org/c\tb", /the control character U\+0009/],
        ["https://hooks.example.org/cb\u0085", /the control character U\+0085/],
        ["https://hooks.example.org\\@evil.example/cb", /a backslash/],
        [" https://hooks.example.org/cb", /spaces around it/],
      ] as const) {
        refused(await sendEmail(server, server.admin, { StatusCallback: callback }), 13019, what);
      }
      const kept = await sendEmail(server, server.admin, {
        StatusCallback: "https://hooks.example.org/cb?a=1%0D",
      });
      assert.equal(kept.status, 200, kept.text);
      assert.equal(kept.json.status_callback, "https://hooks.example.org/cb?a=1%0D");
      refused(
        await sendEmail(server, server.admin, { From: "Bob\u0085 <a@example.org>" }),
        13015,
        /^From contains a line break or control character \(U\+0085\)/,
      );
    });
  });
}
