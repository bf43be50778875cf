import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, test } from "node:test";
import { type AddressObject, type ParsedMail, simpleParser } from "mailparser";
import { type ComposeInput, composeMime, composePlainMime } from "../src/delivery/compose.js";
import type { AttachmentRef, EmailContent } from "../src/model/email-message.js";
import { decodeWords } from "./helpers/mime.js";

const T0 = 1_700_000_000_123;
const MESSAGE_ID = "<EM00000000000000000000000000000002@example.org>";
const BCC = [
  { name: "Hidden Person", address: "hidden.bcc@secret.example" },
  { name: "", address: "other.bcc@secret.example" },
];

function content(overrides: Partial<EmailContent> = {}): EmailContent {
  return {
    from: { name: "Jane Doe", address: "jane.doe@example.org" },
    to: [{ name: "", address: "john.doe@example.com" }],
    cc: [],
    bcc: BCC,
    reply_to: [],
    subject: "Test Email",
    body: null,
    type: null,
    html: null,
    text: null,
    headers: {},
    tags: { campaign: "tag-never-in-mime" },
    attachments: [],
    ...overrides,
  };
}

interface File {
  ref: AttachmentRef;
  bytes: Uint8Array;
}

function file(
  filename: string,
  contentType: string,
  bytes: Uint8Array,
  contentId: string | null = null,
): File {
  const sha256 = createHash("sha256").update(bytes).digest("hex");
  return {
    ref: { filename, content_type: contentType, size: bytes.length, content_id: contentId, sha256 },
    bytes,
  };
}

function input(overrides: Partial<EmailContent>, files: File[] = [], messageId = MESSAGE_ID): ComposeInput {
  return {
    content: content({ ...overrides, attachments: files.map((f) => f.ref) }),
    messageId,
    date: T0,
    attachments: new Map(files.map((f) => [f.ref.sha256, f.bytes])),
  };
}

/** A fixed pseudo-random sequence (mulberry32): the same "random" bytes on every run. */
function randomBytes(length: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(length);
  let state = seed;
  for (let i = 0; i < length; i++) {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    bytes[i] = (t ^ (t >>> 14)) & 0xff;
  }
  return bytes;
}

const PDF = file("Überweisung – März.pdf", "application/pdf", Buffer.from("%PDF-1.4\n%âãÏÓ\n1 0 obj\n"));
const PNG = Buffer.from("89504e470d0a1a0a0000000d49484452", "hex");

// ---- reading the output back ----

/** Everything every composed message must be, whatever its shape; returns it parsed. */
async function composeAndRead(
  message: ComposeInput,
): Promise<{ raw: string; parsed: ParsedMail; tree: Part }> {
  const raw = await composeMime(message);
  assert.equal(await composeMime(message), raw, "composing twice gives the same bytes");
  assert.equal(
    await composeMime(structuredClone(message)),
    raw,
    "the output depends on the input's values only",
  );
  assert.match(raw, /^[\x20-\x7e\t\r\n]*$/, "ASCII only, no control characters but HT, CR and LF");
  assert.doesNotMatch(raw, /\r(?!\n)|(?<!\r)\n/, "CRLF line endings only");
  for (const line of raw.split("\r\n")) {
    assert.ok(Buffer.byteLength(line) <= 998, `line of ${Buffer.byteLength(line)} octets`);
  }
  const { head } = split(raw);
  assert.doesNotMatch(head, /^bcc:/im, "no Bcc header");
  for (const bcc of message.content.bcc) {
    assert.ok(!raw.includes(bcc.address), `Bcc address ${bcc.address} does not appear`);
    if (bcc.name) assert.ok(!raw.includes(bcc.name), `Bcc name ${bcc.name} does not appear`);
  }
  for (const [key, value] of Object.entries(message.content.tags)) {
    assert.ok(!raw.includes(key) && !raw.includes(value), "tags are not part of the message");
  }
  assert.doesNotMatch(head, /^x-mailer:/im, "no X-Mailer");
  const parsed = await simpleParser(raw, { keepCidLinks: true });
  assert.equal(parsed.bcc, undefined);
  return { raw, parsed, tree: parsePart(raw) };
}

function split(raw: string): { head: string; body: string } {
  const end = raw.indexOf("\r\n\r\n");
  assert.ok(end > 0, "a header block ended by an empty line");
  return { head: raw.slice(0, end), body: raw.slice(end + 4) };
}

/** The header fields of a block, unfolded, in order. */
function headerFields(head: string): Array<{ name: string; value: string }> {
  const fields: Array<{ name: string; value: string }> = [];
  for (const line of head.split("\r\n")) {
    const last = fields.at(-1);
    if (/^[ \t]/.test(line) && last) {
      last.value += line;
      continue;
    }
    const colon = line.indexOf(":");
    assert.ok(colon > 0, `"Name: value": ${JSON.stringify(line)}`);
    fields.push({ name: line.slice(0, colon), value: line.slice(colon + 1).trim() });
  }
  return fields;
}

/** A MIME part as this test reads it, independently of mailparser: enough to check the tree. */
interface Part {
  type: string;
  headers: Map<string, string>;
  body: string;
  children: Part[];
}

function parsePart(raw: string): Part {
  const { head, body } = split(raw);
  const headers = new Map(headerFields(head).map((f) => [f.name.toLowerCase(), f.value]));
  const contentType = headers.get("content-type") ?? "text/plain";
  const type = (contentType.split(";")[0] ?? "").trim().toLowerCase();
  const children: Part[] = [];
  if (type.startsWith("multipart/")) {
    const boundary = /boundary="?([^";]+)"?/.exec(contentType)?.[1];
    assert.ok(boundary, "a multipart part declares its boundary");
    const delimiter = `\r\n--${boundary}`;
    const sections = `\r\n${body}`.split(delimiter);
    assert.ok(sections.length >= 3, "at least one part between the delimiters");
    assert.match(sections.at(-1) ?? "", /^--\r\n/, "the close delimiter ends the parts");
    for (const section of sections.slice(1, -1)) {
      assert.ok(section.startsWith("\r\n"), "the delimiter line ends right after the boundary");
      children.push(parsePart(section.slice(2)));
    }
  }
  return { type, headers, body, children };
}

/** The tree as `type(child,child)`, e.g. `multipart/alternative(text/plain,text/html)`. */
function shape(part: Part): string {
  return part.children.length ? `${part.type}(${part.children.map(shape).join(",")})` : part.type;
}

function leaves(part: Part): Part[] {
  return part.children.length ? part.children.flatMap(leaves) : [part];
}

function mailboxes(value: AddressObject | AddressObject[] | undefined) {
  const objects = value === undefined ? [] : Array.isArray(value) ? value : [value];
  return objects.flatMap((object) =>
    object.value.map((item) => ({ name: item.name, address: item.address })),
  );
}

// ---- the tests ----

describe("composeMime: Html and Text", () => {
  test("Html and Text: multipart/alternative, text first, both bodies read back exactly", async () => {
    const text = "Hello John,\n\nthe report is attached — Grüße.\n";
    const html =
      '<p>Hello John,</p>\n<p>the <b>report</b> is attached — Grüße.</p>\n<p style="color:#333">End</p>';
    const { parsed, tree } = await composeAndRead(input({ text, html }));
    assert.equal(shape(tree), "multipart/alternative(text/plain,text/html)");
    assert.equal(parsed.text, text);
    assert.equal(parsed.html, html);
    const [plain, rich] = tree.children;
    assert.equal(plain?.headers.get("content-type"), "text/plain; charset=utf-8");
    assert.equal(rich?.headers.get("content-type"), "text/html; charset=utf-8");
  });

  test("Html alone: a text alternative derived from it, with its words and its links", async () => {
    const html = [
      "<html><head><style>p { color: red }</style><title>Ignored title</title></head><body>",
      "<h1>Spring sale</h1>",
      '<p>Visit <a href="https://shop.example/sale?id=42&amp;ref=mail">our shop</a> today.</p>',
      '<p><img src="cid:banner@example.org" alt="Banner image"> Grüße aus Köln</p>',
      "<table><tr><td>Left cell</td><td>Right cell</td></tr></table>",
      "<script>alert(1)</script></body></html>",
    ].join("\n");
    const { parsed, tree } = await composeAndRead(input({ html }));
    assert.equal(shape(tree), "multipart/alternative(text/plain,text/html)");
    assert.equal(parsed.html, html);
    const text = parsed.text ?? "";
    assert.match(text, /spring sale/i);
    assert.match(text, /Visit our shop \[https:\/\/shop\.example\/sale\?id=42&ref=mail\] today\./);
    assert.match(text, /Grüße aus Köln/);
    assert.match(text, /Left cell\s*\n+\s*Right cell/, "table cells do not run together");
    assert.doesNotMatch(text, /<|alert|color: red|Banner image|cid:/, "no markup, script, style or image");
  });

  test("Html alone that says nothing in text still gets its (empty) text alternative", async () => {
    const { tree } = await composeAndRead(input({ html: '<img src="https://example.org/pixel.gif">' }));
    assert.equal(shape(tree), "multipart/alternative(text/plain,text/html)");
  });

  test("Text alone without attachments is the plain path's single part", async () => {
    const message = input({ text: "Just text\n" });
    const { tree } = await composeAndRead(message);
    assert.equal(shape(tree), "text/plain");
    assert.equal(await composeMime(message), composePlainMime(message));
  });

  test("the boundary never occurs in a part written as it is", async () => {
    const first = await composeMime(input({ text: "plain", html: "<p>html</p>" }));
    const boundary = /boundary="([^"]+)"/.exec(first)?.[1];
    assert.ok(boundary);
    const text = `A line that happens to be the boundary:\n--${boundary}\nand more\n`;
    const { raw, parsed } = await composeAndRead(input({ text, html: "<p>html</p>" }));
    assert.ok(!raw.includes(`boundary="${boundary}"`), "another boundary was derived");
    assert.equal(parsed.text, text);
  });
});

describe("composeMime: headers", () => {
  const addressing: Partial<EmailContent> = {
    to: [
      { name: "", address: "bob@x.test", bracketed: true },
      { name: "", address: "carol@x.test" },
    ],
    cc: [{ name: "Dee, Jr.", address: "dee@x.test" }],
    reply_to: [
      { name: "Support Team", address: "support@example.org" },
      { name: "Zoë Müller", address: "zoe@example.org" },
      { name: "", address: "bare@example.org", bracketed: true },
      { name: "", address: "plain@example.org" },
    ],
  };
  const headers = {
    "X-Campaign": "spring-2024",
    "X-Note": "Grüße aus Köln — 漢字",
    "X-Lookalike": "=?utf-8?Q?Bcc:_evil@x.example?= and =?UTF-8?B?QmNjOiBldmls?= =?x?= ?= =?",
    "x-lower-case": "kept as given",
  };
  // The same header fields, whichever path composes the message.
  const shapes: Array<[string, Partial<EmailContent>, File[]]> = [
    ["plain (Body)", { body: "Body text", type: "text/plain; charset=UTF-8" }, []],
    ["plain (Text)", { text: "Text only" }, []],
    ["rich (Html and Text)", { html: "<p>Html</p>", text: "Text" }, []],
    ["rich (attachment)", { text: "Text" }, [PDF]],
  ];

  for (const [name, body, files] of shapes) {
    test(`${name}: Reply-To, bracketed addresses and custom headers, in order`, async () => {
      const { raw, parsed } = await composeAndRead(input({ ...addressing, headers, ...body }, files));
      const fields = headerFields(split(raw).head);
      const names = fields.map((f) => f.name);
      const contentFields = names.slice(names.indexOf("Date") + 1);
      assert.deepEqual(names.slice(0, names.indexOf("Date") + 1), [
        "From",
        "To",
        "Cc",
        "Reply-To",
        "Subject",
        ...Object.keys(headers),
        "Message-ID",
        "Date",
      ]);
      assert.deepEqual(
        contentFields.filter((n) => n !== "Content-Transfer-Encoding"),
        ["MIME-Version", "Content-Type"],
        "then only what describes the content",
      );

      const value = (key: string) => fields.find((f) => f.name === key)?.value;
      assert.equal(value("To"), "<bob@x.test>, carol@x.test", "a bracketed bare address stays bracketed");
      assert.match(value("Reply-To") ?? "", /, <bare@example\.org>, plain@example\.org$/);
      assert.deepEqual(
        mailboxes(parsed.replyTo),
        (addressing.reply_to ?? []).map(({ name, address }) => ({ name, address })),
      );
      assert.deepEqual(mailboxes(parsed.to), [
        { name: "", address: "bob@x.test" },
        { name: "", address: "carol@x.test" },
      ]);
      assert.deepEqual(mailboxes(parsed.cc), [{ name: "Dee, Jr.", address: "dee@x.test" }]);

      // mailparser keeps the order and leaves custom values encoded: decoded here, as sent.
      const custom = parsed.headerLines.filter((line) => line.key.startsWith("x-"));
      assert.deepEqual(
        custom.map((line) => line.key),
        Object.keys(headers).map((key) => key.toLowerCase()),
      );
      const read = fields.filter((f) => f.name.toLowerCase().startsWith("x-"));
      assert.deepEqual(
        read.map((f) => [f.name, decodeWords(f.value)]),
        Object.entries(headers),
      );
      assert.equal(parsed.subject, "Test Email");
    });
  }

  test("both paths write the same header lines for the same content", async () => {
    const head = async (overrides: Partial<EmailContent>, files: File[] = []) => {
      const { head } = split(await composeMime(input({ ...addressing, headers, ...overrides }, files)));
      return head
        .slice(0, head.indexOf("\r\nMIME-Version:"))
        .replace(/\r\nContent-Transfer-Encoding: .*$/, "");
    };
    const plain = await head({ text: "Text" });
    assert.equal(await head({ text: "Text", html: "<p>Html</p>" }), plain);
    assert.equal(await head({ text: "Text" }, [PDF]), plain);
  });

  test("a custom header named like one composition writes is refused", async () => {
    for (const name of ["Bcc", "from", "Reply-To", "Message-ID", "Content-Type", "MIME-Version"]) {
      await assert.rejects(composeMime(input({ text: "x", headers: { [name]: "v" } })), /is composed from/);
      await assert.rejects(
        composeMime(input({ html: "<p>x</p>", headers: { [name]: "v" } })),
        /is composed from/,
      );
    }
    await assert.rejects(composeMime(input({ text: "x", headers: { "Bad Name": "v" } })), /not a header/);
    await assert.rejects(composeMime(input({ text: "x", headers: { "X-A:b": "v" } })), /not a header/);
  });
});

describe("composeMime: attachments", () => {
  test("bytes, content types and filenames read back exactly", async () => {
    const random = file("random.bin", "application/octet-stream", randomBytes(100 * 1024, 20240229));
    const text = file("notes.txt", "text/plain", Buffer.from("line one\nline two\r\nno final break"));
    const empty = file("empty.dat", "application/x-empty", new Uint8Array(0));
    const quoted = file('a "quoted"; name=evil.txt; x=y', "text/csv", Buffer.from("a,b\n1,2\n"));
    const files = [PDF, random, text, empty, quoted];
    const { raw, parsed, tree } = await composeAndRead(input({ text: "See attached.\n" }, files));
    assert.equal(
      shape(tree),
      "multipart/mixed(text/plain,application/pdf,application/octet-stream,text/plain,application/x-empty,text/csv)",
    );
    assert.equal(parsed.text, "See attached.\n");
    assert.deepEqual(
      parsed.attachments.map((a) => [a.filename, a.contentType, a.contentDisposition]),
      files.map((f) => [f.ref.filename, f.ref.content_type, "attachment"]),
    );
    parsed.attachments.forEach((attachment, i) => {
      assert.ok(
        Buffer.from(files[i]?.bytes ?? []).equals(attachment.content),
        `the bytes of ${attachment.filename}`,
      );
    });
    // RFC 2231 for the non-ASCII filename, and nothing of the quoted one escapes its parameter.
    const pdf = leaves(tree)[1];
    assert.match(
      pdf?.headers.get("content-disposition") ?? "",
      /^attachment; filename\*(0\*)?=utf-8''%C3%9Cberweisung/,
    );
    assert.doesNotMatch(raw, /^\s*x=y/m);
    const csv = leaves(tree)[5];
    assert.equal(
      csv?.headers.size,
      3,
      "Content-Type, Content-Transfer-Encoding and Content-Disposition only",
    );
  });

  test("line breaks and quotes in a filename cannot break out of the header", async () => {
    const hostile = file(
      'evil\r\nBcc: injected@evil.example\r\nX-Evil: "1".txt',
      "text/plain",
      Buffer.from("x"),
    );
    const { raw, parsed, tree } = await composeAndRead(input({ text: "x" }, [hostile]));
    assert.doesNotMatch(raw, /^(bcc|x-evil):/im, "nothing injected starts a header line");
    assert.equal(leaves(tree)[1]?.headers.size, 3);
    assert.equal(parsed.attachments[0]?.filename, hostile.ref.filename);
    assert.ok(!mailboxes(parsed.to).some((m) => m.address?.includes("evil")));
  });

  test("an inline image with a content_id: multipart/related beside the HTML, referenced as cid", async () => {
    const logo = file("logo.png", "image/png", PNG, "logo@mailroom");
    const html = '<p>Our logo: <img src="cid:logo@mailroom" alt="Logo"></p>';
    const { parsed, tree } = await composeAndRead(input({ html }, [logo, PDF]));
    assert.equal(
      shape(tree),
      "multipart/mixed(multipart/alternative(text/plain,multipart/related(text/html,image/png)),application/pdf)",
    );
    const image = leaves(tree)[2];
    assert.equal(image?.headers.get("content-id"), "<logo@mailroom>");
    assert.match(image?.headers.get("content-disposition") ?? "", /^inline; filename=logo\.png$/);
    assert.match(parsed.html || "", /src="cid:logo@mailroom"/);
    const [inline, attached] = parsed.attachments;
    assert.equal(inline?.cid, "logo@mailroom");
    assert.equal(inline?.related, true);
    assert.equal(inline?.contentDisposition, "inline");
    assert.ok(inline?.content.equals(PNG));
    assert.equal(attached?.related, undefined);
    assert.equal(attached?.filename, PDF.ref.filename);
  });

  test("only inline images: the related part is the HTML alternative", async () => {
    const logo = file("logo.png", "image/png", PNG, "logo@mailroom");
    const { tree } = await composeAndRead(
      input({ html: '<img src="cid:logo@mailroom">', text: "Logo" }, [logo]),
    );
    assert.equal(shape(tree), "multipart/alternative(text/plain,multipart/related(text/html,image/png))");
  });

  test("Body typed text/html with an attachment: mixed, the body part text/html", async () => {
    const body = "<p>Hallo <b>Welt</b></p>";
    const { parsed, tree } = await composeAndRead(input({ body, type: "text/html; charset=UTF-8" }, [PDF]));
    assert.equal(shape(tree), "multipart/mixed(text/html,application/pdf)");
    assert.equal(tree.children[0]?.headers.get("content-type"), "text/html; charset=utf-8");
    assert.equal(parsed.html, body);
    assert.equal(parsed.attachments.length, 1);
  });

  test("Body typed text/plain with an attachment: mixed, the body part text/plain", async () => {
    const body = "one\rtwo\nthree";
    const { parsed, tree } = await composeAndRead(input({ body, type: "text/plain" }, [PDF]));
    assert.equal(shape(tree), "multipart/mixed(text/plain,application/pdf)");
    assert.equal(parsed.text, "one\ntwo\nthree", "bare CR and LF are line breaks, as on the plain path");
  });

  test("a message/rfc822 attachment is 7bit when it can be, base64 otherwise", async () => {
    const forwarded = file("fwd.eml", "message/rfc822", Buffer.from("Subject: hi\r\n\r\nbody\r\n"));
    const binary = file("bin.eml", "message/rfc822", Buffer.from("Subject: é\r\n\r\n\u0000\r\n", "latin1"));
    const { tree } = await composeAndRead(input({ text: "x" }, [forwarded, binary]));
    const [, seven, encoded] = leaves(tree);
    assert.equal(seven?.headers.get("content-transfer-encoding"), "7bit");
    assert.equal(seven?.body, "Subject: hi\r\n\r\nbody\r\n");
    assert.equal(encoded?.headers.get("content-transfer-encoding"), "base64");
  });

  test("different Message-IDs, different boundaries; the same, the same bytes", async () => {
    const a = await composeMime(input({ text: "x" }, [PDF]));
    const b = await composeMime(
      input({ text: "x" }, [PDF], "<EM00000000000000000000000000000003@example.org>"),
    );
    const boundary = (raw: string) => /boundary="([^"]+)"/.exec(raw)?.[1];
    assert.notEqual(boundary(a), boundary(b));
    assert.equal(await composeMime(input({ text: "x" }, [PDF])), a);
  });

  test("missing or mismatched attachment bytes are refused", async () => {
    const missing = input({ text: "x" }, [PDF]);
    missing.attachments = new Map();
    await assert.rejects(composeMime(missing), /bytes of attachment .* are missing/);
    const wrong = input({ text: "x" }, [PDF]);
    wrong.attachments = new Map([[PDF.ref.sha256, Buffer.from("something else")]]);
    await assert.rejects(composeMime(wrong), /are not/);
  });

  test("a content type that is not one, or is multipart, is refused", async () => {
    for (const type of ["pdf", "multipart/mixed", "text/plain\r\nBcc: x@evil.example", ""]) {
      await assert.rejects(
        composeMime(input({ text: "x" }, [file("a.bin", type, Buffer.from("a"))])),
        /content type/,
      );
    }
  });
});
