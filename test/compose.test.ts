import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { type AddressObject, type ParsedMail, simpleParser } from "mailparser";
import MailComposer from "nodemailer/lib/mail-composer";
import { hasLongerLines } from "nodemailer/lib/mime-funcs";
import {
  type ComposeInput,
  composeMime,
  composePlainMime,
  hasLineLongerThan,
} from "../src/delivery/compose.js";
import { parseAddressList } from "../src/domain/addresses.js";

/**
 * A message as a caller sends it (Restcomm's From, To, Cc, Bcc, Subject, Body, Type) and as Mailroom
 * stored it before EmailContent, with the Message-ID and acceptance time it was given: the corpus is
 * written in this form, and composed from the ComposeInput the API would make of it (inputOf).
 */
interface Fields {
  from_address: string;
  to_addresses: string;
  cc_addresses: string;
  bcc_addresses: string;
  subject: string;
  body: string;
  type: string;
  message_id: string;
  date_created: number;
}

function inputOf(message: Fields): ComposeInput {
  const list = (value: string) => (value.trim() ? parseAddressList(value) : []);
  const [from] = parseAddressList(message.from_address);
  assert.ok(from);
  return {
    content: {
      from,
      to: parseAddressList(message.to_addresses),
      cc: list(message.cc_addresses),
      bcc: list(message.bcc_addresses),
      reply_to: [],
      subject: message.subject,
      body: message.body,
      type: message.type,
      html: null,
      text: null,
      headers: {},
      tags: {},
      attachments: [],
    },
    messageId: message.message_id,
    date: message.date_created,
    attachments: new Map(),
  };
}

/** The plain path, synchronously: every message of the corpus has its shape. */
function compose(message: Fields): string {
  const raw = composePlainMime(inputOf(message));
  assert.ok(raw !== null, "a Body message without attachments takes the plain path");
  return raw;
}

/**
 * The reference oracle: composeMime as it was before it built the string itself, through
 * nodemailer's MailComposer and its stream pipelines. Kept verbatim so every row of the corpus can
 * be composed both ways and the two compared.
 */
async function oldComposeMime(message: Fields): Promise<string> {
  const body = message.type.toLowerCase().startsWith("text/html")
    ? { html: message.body }
    : { text: message.body };
  const composer = new MailComposer({
    from: parseAddressList(message.from_address),
    to: parseAddressList(message.to_addresses),
    cc: message.cc_addresses ? parseAddressList(message.cc_addresses) : undefined,
    subject: message.subject,
    messageId: message.message_id,
    date: new Date(message.date_created),
    newline: "win",
    ...body,
  });
  const raw = await composer.compile().build();
  return raw.toString("utf8");
}

const BCC = '"Hidden Person" <hidden.bcc@secret.example>, other.bcc@secret.example';
const T0 = 1_700_000_000_123;

function fields(overrides: Partial<Fields> = {}): Fields {
  return {
    from_address: "Jane Doe <jane.doe@example.org>",
    to_addresses: "john.doe@example.com",
    cc_addresses: "",
    bcc_addresses: BCC,
    subject: "Test Email",
    body: "This is a test",
    type: "text/plain; charset=UTF-8",
    message_id: "<EM00000000000000000000000000000001@example.org>",
    date_created: T0,
    ...overrides,
  };
}

type Field = "from" | "to" | "cc" | "subject" | "body";
type Encoding = "7bit" | "quoted-printable" | "base64";

interface Case {
  name: string;
  fields: Fields;
  encoding: Encoding;
  /** The new output is byte for byte what MailComposer wrote. */
  identicalToOld?: boolean;
  /**
   * Fields where MailComposer's output did not read back as the row says; for those the test
   * asserts the old parse differs from the row (the bug) and the new one does not.
   */
  oldWrong?: Field[];
  /** Every header line fits in 78 characters (false only where an unbreakable word is longer). */
  shortHeaders?: boolean;
  /** What the Message-ID reads back as, when that is not the row's own. */
  messageId?: string;
}

const long = (unit: string, count: number) => unit.repeat(count);
// 160 code points (the API's limit), none of them ASCII: accents, emoji (two UTF-16 units), CJK.
const exactly160 = long("é🎉漢字ü", 32);

const corpus: Case[] = [
  { name: "plain ASCII", fields: fields(), encoding: "7bit", identicalToOld: true },
  {
    name: "plain ASCII over several lines, bare LF",
    fields: fields({ body: "Hello John,\n\nthis is the second paragraph.\n\n-- \nJane\n" }),
    encoding: "7bit",
    identicalToOld: true,
  },
  {
    name: "UTF-8 subject and body: emoji, CJK, accents (mostly Latin: quoted-printable)",
    fields: fields({
      subject: "Grüße aus Köln ✓ 🎉 漢字",
      body: "Hallo Jürgen,\r\nça va? Voilà le résumé: naïve façade.\r\nLiebe Grüße 🎉\r\n",
    }),
    encoding: "quoted-printable",
    identicalToOld: true,
  },
  {
    name: "UTF-8 body mostly CJK (base64)",
    fields: fields({
      subject: "漢字テキスト",
      body: "日本語のテキストです。\r\n漢字とかなを含みます 🎌\r\n",
    }),
    encoding: "base64",
    identicalToOld: true,
  },
  {
    name: "UTF-8 body with bare LF (base64 of CRLF text)",
    fields: fields({ subject: "ça", body: "日本語\n中文\n한국어\n" }),
    encoding: "base64",
  },
  {
    name: "subject of exactly 160 non-ASCII characters",
    fields: fields({ subject: exactly160 }),
    encoding: "7bit",
    identicalToOld: true,
  },
  {
    name: "subject of 160 CJK characters",
    fields: fields({ subject: long("漢", 160) }),
    encoding: "7bit",
    identicalToOld: true,
  },
  {
    name: "ASCII line over 998 characters, no spaces (quoted-printable)",
    fields: fields({ body: `${long("x", 5000)}\r\nshort line\r\n${long("y", 1200)}` }),
    encoding: "quoted-printable",
    identicalToOld: true,
  },
  {
    name: "digits-only line over 998 characters (no Latin letters: base64)",
    fields: fields({ body: long("0123456789", 150) }),
    encoding: "base64",
    identicalToOld: true,
  },
  {
    name: "non-ASCII line over 998 characters, no spaces",
    fields: fields({ body: long("é", 3000) }),
    encoding: "base64",
    identicalToOld: true,
  },
  {
    name: "unwrapped ASCII paragraphs with bare LF (quoted-printable, soft breaks at spaces)",
    fields: fields({
      body: `Hello John,\n\n${long("This paragraph was typed without hard line breaks, as API callers do. ", 8)}\n\n-- \nJane\n`,
    }),
    encoding: "quoted-printable",
  },
  {
    name: "ASCII line of 77 characters (just over the 7bit limit)",
    fields: fields({ body: `${long("a", 77)}\r\n` }),
    encoding: "quoted-printable",
    identicalToOld: true,
  },
  {
    name: "ASCII line of 76 characters (still 7bit)",
    fields: fields({ body: `${long("a", 76)}\r\n` }),
    encoding: "7bit",
    identicalToOld: true,
  },
  {
    name: "HTML body",
    fields: fields({
      type: "text/html; charset=UTF-8",
      body: "<p>Hallo <b>Welt</b> – ça va?</p>\n<p>Second</p>",
    }),
    encoding: "quoted-printable",
    identicalToOld: true,
  },
  {
    name: "HTML body, ASCII, a long line",
    fields: fields({
      type: "text/html; charset=UTF-8",
      body: `<html><body><table>${long('<tr><td class="cell">value</td></tr>', 60)}</table></body></html>`,
    }),
    encoding: "quoted-printable",
    identicalToOld: true,
  },
  {
    name: "display names with quotes, commas, backslashes, angle brackets and specials",
    fields: fields({
      from_address: '"Eve \\" Bcc: victim@evil.example" <eve@example.org>',
      to_addresses: [
        '"Doe, Jane" <jane@y.example>',
        '"back\\\\slash" <bs@y.example>',
        '"<spoof@evil.example>" <angle@y.example>',
        '"To: boss@example.org, Bcc: x@evil.example" <real@example.org>',
        '"(paren) semi; colon: at@sign" <specials@y.example>',
      ].join(", "),
    }),
    encoding: "7bit",
    identicalToOld: true,
  },
  {
    name: "display names that look like encoded-words",
    fields: fields({
      from_address: '"=?utf-8?Q?x?=" <lookalike@example.org>',
      to_addresses:
        '"=?utf-8?Q?a=22_=3Cevil@x.example=3E,?=" <r@y.example>, "=?UTF-8?B?QmNjOiBldmlsQHguZXhhbXBsZQ==?=" <b@y.example>',
      cc_addresses: '"see =?utf-8?Q?a b?= here" <c@y.example>',
    }),
    encoding: "7bit",
    oldWrong: ["from", "to", "cc"],
  },
  {
    name: "non-ASCII display names",
    fields: fields({
      from_address: "Jürgen Müller <juergen@example.de>",
      to_addresses:
        '山田 太郎 <taro@example.jp>, "Zoë \\"Z\\" O\'Brien, Ph.D." <zoe@example.ie>, 🎉 Party <party@example.org>',
    }),
    encoding: "7bit",
    identicalToOld: true,
  },
  {
    name: "several To and Cc addresses, with and without names",
    fields: fields({
      to_addresses: [
        "a1@rcpt.example",
        "Ann <a2@rcpt.example>",
        '"Bob, Jr." <a3@rcpt.example>',
        "a4@rcpt.example",
        "Ünal <a5@rcpt.example>",
        "a6@[192.0.2.1]",
      ].join(", "),
      cc_addresses: 'c1@rcpt.example, Carl <c2@rcpt.example>, c3@rcpt.example, "Dee; Dum" <c4@rcpt.example>',
    }),
    encoding: "7bit",
    identicalToOld: true,
  },
  {
    name: "many recipients (folded To)",
    fields: fields({
      to_addresses: Array.from({ length: 60 }, (_, i) => `Recipient Number ${i} <r${i}@rcpt.example>`).join(
        ", ",
      ),
      cc_addresses: Array.from({ length: 30 }, (_, i) => `c${i}@rcpt.example`).join(", "),
    }),
    encoding: "7bit",
    identicalToOld: true,
  },
  {
    name: "empty text body",
    fields: fields({ body: "" }),
    encoding: "7bit",
  },
  {
    name: "empty HTML body",
    fields: fields({ body: "", type: "text/html; charset=UTF-8" }),
    encoding: "7bit",
  },
  {
    name: 'body lines starting with "." and "From "',
    fields: fields({ body: ".\r\n.leading dot\r\n..two dots\r\nFrom me to you\r\n>From quoted\r\n.\r\n" }),
    encoding: "7bit",
    identicalToOld: true,
  },
  {
    name: "body with bare CR line endings",
    fields: fields({ body: "one\rtwo\rthree\r" }),
    encoding: "7bit",
  },
  {
    name: "body with mixed bare CR, bare LF and CRLF",
    fields: fields({ body: "one\rtwo\nthree\r\nfour\n\rfive\r\r\nsix" }),
    encoding: "7bit",
    // MailComposer let "\r\r\n" through as it was, which reads back as one line break, not two.
    oldWrong: ["body"],
  },
  {
    name: "quoted-printable body with bare CR, trailing whitespace and '='",
    fields: fields({ body: "Grüße =3D \rtrailing space \nand tab\t\r\nend = " }),
    encoding: "quoted-printable",
  },
  {
    name: "subject with quotes, tabs and specials",
    fields: fields({ subject: 'Re: "quoted" <b@x.example>, a; b: c\tafter tab' }),
    encoding: "7bit",
    identicalToOld: true,
  },
  {
    name: "subject that is an encoded-word followed by text",
    fields: fields({ subject: "=?utf-8?Q?Bcc:_injected@evil.example?= Hello: World, <b@evil.example>" }),
    encoding: "7bit",
    oldWrong: ["subject"],
  },
  {
    name: "ASCII subject with a 120 character word (folded where possible)",
    fields: fields({ subject: `Link: https://example.org/${long("p", 100)} and more words after it` }),
    encoding: "7bit",
    identicalToOld: true,
    shortHeaders: false,
  },
];

/**
 * Rows that validation would have refused (line breaks, control characters, oversized values): the
 * composer must stay safe on its own. Line breaks in header-bound values read back as spaces.
 */
const hostile: Case[] = [
  {
    name: "CRLF in the subject",
    fields: fields({ subject: "Hello\r\nBcc: injected@evil.example\r\nX-Evil: 1" }),
    encoding: "7bit",
  },
  {
    name: "bare LF and bare CR in the subject",
    fields: fields({ subject: "Hello\nBcc: lf@evil.example\rTo: cr@evil.example" }),
    encoding: "7bit",
  },
  {
    // The address parser already turns these into spaces; the composer would too.
    name: "CR and LF in display names",
    fields: fields({
      from_address: '"Eve\r\nBcc: from@evil.example" <eve@example.org>',
      to_addresses:
        '"Real\nTo: lf@evil.example" <real@example.org>, "Other\rCc: cr@evil.example" <o@example.org>',
    }),
    encoding: "7bit",
  },
  {
    name: "control characters in the subject",
    fields: fields({ subject: "bell\u0007 null\u0000 del\u007f esc\u001b[31m" }),
    encoding: "7bit",
  },
  {
    name: "ASCII subject of 3000 characters without whitespace",
    fields: fields({ subject: long("s", 3000) }),
    encoding: "7bit",
  },
  {
    name: "subject with a long run of spaces",
    fields: fields({ subject: `a${long(" ", 200)}b` }),
    encoding: "7bit",
  },
  {
    name: "display name of 2000 characters without whitespace",
    fields: fields({ to_addresses: `"${long("n", 2000)}" <long.name@example.org>` }),
    encoding: "7bit",
  },
  {
    name: "CRLF in the Message-ID",
    fields: fields({ message_id: "<id@example.org>\r\nBcc: mid@evil.example" }),
    encoding: "7bit",
    // One msg-id header, its line break a space, closed with the ">" it lacked (as MimeNode does).
    messageId: "<id@example.org> Bcc: mid@evil.example>",
  },
];

// ---- helpers ----

const HEADER_NAMES_ALWAYS = [
  "from",
  "to",
  "subject",
  "message-id",
  "date",
  "mime-version",
  "content-type",
  "content-transfer-encoding",
];

function splitMessage(raw: string): { head: string; body: string } {
  const end = raw.indexOf("\r\n\r\n");
  assert.ok(end > 0, "the message has a header block ended by an empty line");
  return { head: raw.slice(0, end), body: raw.slice(end + 4) };
}

/** The header fields of the block, unfolded: names in order, and each field's value. */
function headerFields(head: string): Array<{ name: string; value: string }> {
  const fields: Array<{ name: string; value: string }> = [];
  for (const line of head.split("\r\n")) {
    if (line.startsWith(" ") || line.startsWith("\t")) {
      const last = fields.at(-1);
      assert.ok(last, "a continuation line follows a header line");
      last.value += line;
      continue;
    }
    const colon = line.indexOf(":");
    assert.ok(colon > 0, `every header line is "Name: value": ${JSON.stringify(line)}`);
    fields.push({ name: line.slice(0, colon).toLowerCase(), value: line.slice(colon + 1).trim() });
  }
  return fields;
}

/** What a header-bound value is expected to read back as: line breaks become one space each. */
const headerText = (value: string) => value.replace(/\r\n|\r|\n/g, " ");
/** Bodies compared modulo line endings, and the one line break the composer may add at the end. */
const bodyText = (value: string) => value.replace(/\r\n|\r/g, "\n").replace(/\n$/, "");

function mailboxes(
  value: AddressObject | AddressObject[] | undefined,
): Array<{ name: string; address: string }> {
  if (value === undefined) return [];
  const objects = Array.isArray(value) ? value : [value];
  return objects.flatMap((object) =>
    object.value.map((item) => ({ name: item.name, address: item.address ?? "" })),
  );
}

function expectedMailboxes(list: string): Array<{ name: string; address: string }> {
  if (!list.trim()) return [];
  return parseAddressList(list).map((m) => ({ name: headerText(m.name), address: m.address }));
}

interface Reading {
  from: Array<{ name: string; address: string }>;
  to: Array<{ name: string; address: string }>;
  cc: Array<{ name: string; address: string }>;
  subject: string | undefined;
  messageId: string | undefined;
  date: number | undefined;
  body: string;
}

function read(parsed: ParsedMail, html: boolean): Reading {
  return {
    from: mailboxes(parsed.from),
    to: mailboxes(parsed.to),
    cc: mailboxes(parsed.cc),
    subject: parsed.subject,
    messageId: parsed.messageId,
    date: parsed.date?.getTime(),
    body: bodyText((html ? parsed.html || "" : parsed.text) ?? ""),
  };
}

function expected(message: Fields): Reading {
  return {
    from: expectedMailboxes(message.from_address),
    to: expectedMailboxes(message.to_addresses),
    cc: expectedMailboxes(message.cc_addresses),
    subject: headerText(message.subject),
    messageId: message.message_id,
    // The Date header has whole seconds.
    date: Math.floor(message.date_created / 1000) * 1000,
    body: bodyText(message.body),
  };
}

function assertWellFormed(raw: string, message: Fields, encoding: Encoding, shortHeaders: boolean) {
  assert.ok(raw.endsWith("\r\n"), "the message ends with CRLF");
  assert.doesNotMatch(raw, /\r(?!\n)/, "no bare CR");
  assert.doesNotMatch(raw, /(?<!\r)\n/, "no bare LF");
  const lines = raw.split("\r\n");
  for (const line of lines) {
    assert.ok(
      Buffer.byteLength(line) <= 998,
      `line of ${Buffer.byteLength(line)} octets: ${line.slice(0, 60)}…`,
    );
  }

  const { head } = splitMessage(raw);
  assert.match(head, /^[\x20-\x7e\t\r\n]*$/, "the header block is ASCII");
  for (const line of head.split("\r\n").slice(1)) {
    if (/^[ \t]/.test(line)) {
      assert.match(line, /^[ \t]+[^ \t]/, "a continuation line is not only whitespace");
    }
  }
  if (shortHeaders) {
    for (const line of head.split("\r\n")) {
      assert.ok(line.length <= 78, `header line of ${line.length} characters: ${line}`);
    }
  }

  const header = headerFields(head);
  const names = header.map((f) => f.name);
  const wanted = [...HEADER_NAMES_ALWAYS, ...(message.cc_addresses.trim() ? ["cc"] : [])].sort();
  assert.deepEqual([...names].sort(), wanted, "exactly the expected headers, each once");
  assert.equal(new Set(names).size, names.length, "no header appears twice");

  const value = (name: string) => header.find((f) => f.name === name)?.value;
  assert.equal(value("mime-version"), "1.0");
  const html = message.type.toLowerCase().startsWith("text/html");
  assert.equal(value("content-type"), `${html ? "text/html" : "text/plain"}; charset=utf-8`);
  assert.equal(value("content-transfer-encoding"), encoding);

  // Bcc recipients are only in the envelope: neither their addresses nor their names appear.
  for (const bcc of parseAddressList(message.bcc_addresses)) {
    assert.ok(!raw.includes(bcc.address), `Bcc address ${bcc.address} does not appear`);
    if (bcc.name) assert.ok(!raw.includes(bcc.name), `Bcc name ${bcc.name} does not appear`);
  }
}

async function check(c: Case): Promise<void> {
  const message = c.fields;
  const html = message.type.toLowerCase().startsWith("text/html");
  const raw = compose(message);

  assertWellFormed(raw, message, c.encoding, c.shortHeaders ?? true);
  assert.equal(compose(message), raw, "composing the same message twice gives the same bytes");
  assert.equal(compose(structuredClone(message)), raw, "the output depends on the message's values only");

  const parsed = await simpleParser(raw);
  assert.equal(parsed.bcc, undefined, "no Bcc header");
  const reading = read(parsed, html);
  const want = expected(message);
  assert.deepEqual(reading, want, "the message reads back as the row says");
  if (!html) assert.equal(parsed.html, false, "a text/plain message has no HTML part");

  const old = await oldComposeMime(message);
  if (c.identicalToOld) assert.equal(raw, old, "the same bytes as MailComposer wrote");
  const oldReading = read(await simpleParser(old), html);
  const oldWrong = new Set(c.oldWrong ?? []);
  for (const field of ["from", "to", "cc", "subject", "body"] as const) {
    if (oldWrong.has(field)) {
      assert.notDeepEqual(
        oldReading[field],
        want[field],
        `MailComposer's ${field} did not read back as the row`,
      );
    } else {
      assert.deepEqual(reading[field], oldReading[field], `${field} reads as MailComposer's did`);
    }
  }
  assert.equal(reading.messageId, oldReading.messageId, "Message-ID reads as MailComposer's did");
  assert.equal(reading.date, oldReading.date, "Date reads as MailComposer's did");
}

describe("composeMime: the corpus reads back as the row and as MailComposer's output", () => {
  for (const c of corpus) {
    test(c.name, () => check(c));
  }
});

describe("composeMime: messages validation would refuse still compose safely", () => {
  for (const c of hostile) {
    test(c.name, async () => {
      const raw = compose(c.fields);
      assertWellFormed(raw, c.fields, c.encoding, c.shortHeaders ?? true);
      assert.equal(compose(c.fields), raw, "deterministic");
      const parsed = await simpleParser(raw);
      assert.equal(parsed.bcc, undefined, "no Bcc header");
      const reading = read(parsed, false);
      const want = { ...expected(c.fields), messageId: c.messageId ?? c.fields.message_id };
      assert.deepEqual(reading, want, "the message reads back as the row says, line breaks as spaces");
      assert.doesNotMatch(raw, /^(bcc|x-evil):/im, "nothing injected starts a header line");
      for (const { address } of [...reading.to, ...reading.cc, ...reading.from]) {
        assert.doesNotMatch(address, /evil/, "no injected recipient");
      }
    });
  }
});

describe("composeMime: encoding details", () => {
  test("the line-length check answers as nodemailer's hasLongerLines", () => {
    const line = (n: number) => "x".repeat(n);
    const cases = [
      "",
      line(76),
      line(77),
      `${line(76)}\r\n${line(76)}`,
      `${line(76)}\r\n${line(77)}`,
      `${line(70)}\r${line(70)}`,
      `${line(40)}\u2028${line(40)}`,
      `${line(77)}\n`,
      `\n\n${line(75)}\r\n\r\n${line(78)}\r\n`,
      line(128 * 1024 + 1).replace(/x{60}/g, (run) => `${run}\r\n`),
    ];
    // And text of lines around the limit, line breaks of every kind (a fixed pseudo-random sequence).
    let seed = 1;
    const next = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    for (let i = 0; i < 200; i++) {
      let text = "";
      while (text.length < 400) text += line(next(90)) + ["\r\n", "\n", "\r", " "][next(4)];
      cases.push(text);
    }
    for (const text of cases) {
      assert.equal(hasLineLongerThan(text, 76), hasLongerLines(text, 76), JSON.stringify(text.slice(0, 200)));
    }
  });
  test("the 160 character subject of the corpus is 160 non-ASCII characters", () => {
    assert.equal([...exactly160].length, 160);
    assert.ok(
      [...exactly160].every((ch) => (ch.codePointAt(0) ?? 0) > 0x7f),
      "no ASCII character",
    );
  });

  test("a Date header in RFC 5322 format, in UTC", () => {
    const raw = compose(fields({ date_created: Date.UTC(2024, 1, 29, 7, 5, 9, 999) }));
    assert.match(raw, /\r\nDate: Thu, 29 Feb 2024 07:05:09 \+0000\r\n/);
  });

  test("the Date header of each message is its own second's, whatever came before", () => {
    const dateOf = (ms: number) => /\r\nDate: ([^\r]*)\r\n/.exec(compose(fields({ date_created: ms })))?.[1];
    const at = Date.UTC(2024, 1, 29, 7, 5, 9);
    assert.equal(dateOf(at + 1), "Thu, 29 Feb 2024 07:05:09 +0000");
    assert.equal(dateOf(at + 999), "Thu, 29 Feb 2024 07:05:09 +0000");
    assert.equal(dateOf(at + 1000), "Thu, 29 Feb 2024 07:05:10 +0000");
    assert.equal(dateOf(at - 1), "Thu, 29 Feb 2024 07:05:08 +0000");
    assert.equal(dateOf(-1), "Wed, 31 Dec 1969 23:59:59 +0000");
    assert.equal(dateOf(-0.5), "Thu, 01 Jan 1970 00:00:00 +0000");
    assert.throws(() => compose(fields({ date_created: Number.NaN })), /is not a time/);
    assert.throws(() => compose(fields({ date_created: 8.64e15 + 1 })), /is not a time/);
  });

  test("a non-ASCII subject becomes encoded-words, a plain one stays as it is", () => {
    assert.match(compose(fields({ subject: "Plain subject" })), /\r\nSubject: Plain subject\r\n/);
    const encoded = compose(fields({ subject: "Grüße" }));
    assert.match(encoded, /\r\nSubject: =\?UTF-8\?Q\?Gr=C3=BC=C3=9Fe\?=\r\n/);
  });

  test("display names: bare when atext, quoted with escapes when they have specials, encoded when not ASCII", () => {
    const raw = compose(
      fields({
        to_addresses: 'Ann Lee <a@x.example>, "Doe, \\"J\\" \\\\ x" <b@x.example>, Zoë <c@x.example>',
      }),
    );
    const to = headerFields(splitMessage(raw).head).find((f) => f.name === "to")?.value;
    assert.equal(
      to,
      'Ann Lee <a@x.example>, "Doe, \\"J\\" \\\\ x" <b@x.example>, =?UTF-8?Q?Zo=C3=AB?= <c@x.example>',
    );
  });

  test("an empty body still makes a complete message", async () => {
    const raw = compose(fields({ body: "" }));
    assert.ok(raw.endsWith("\r\n\r\n"), "the header block ends with an empty line");
    const parsed = await simpleParser(raw);
    assert.equal(parsed.subject, "Test Email");
    assert.equal(parsed.text ?? "", "");
  });

  test("a bare CR in a 7bit body becomes CRLF (MailComposer passed it through)", async () => {
    const message = fields({ body: "one\rtwo" });
    assert.ok((await oldComposeMime(message)).includes("one\rtwo"), "the old output had a bare CR");
    assert.ok(compose(message).endsWith("\r\n\r\none\r\ntwo\r\n"));
  });

  test("the body's line-ending style does not change the output", () => {
    for (const body of [
      "plain\nASCII\n\ntext\n",
      `Grüße\n${long("a", 75)}\n${long("word ", 40)}\ntrailing \n`,
      "日本語\n中文\n",
    ]) {
      const lf = compose(fields({ body }));
      assert.equal(compose(fields({ body: body.replaceAll("\n", "\r\n") })), lf, "CRLF as LF");
      assert.equal(compose(fields({ body: body.replaceAll("\n", "\r") })), lf, "CR as LF");
    }
  });

  test("quoted-printable keeps lines of up to 76 characters whole and soft-breaks longer ones", () => {
    const raw = compose(fields({ body: `é\n${long("a", 75)}\n${long("b", 76)}\n${long("c", 77)}\n` }));
    const { body } = splitMessage(raw);
    assert.equal(body, `=C3=A9\r\n${long("a", 75)}\r\n${long("b", 76)}\r\n${long("c", 75)}=\r\ncc\r\n`);
  });

  test("quoted-printable lines stay within 76 characters and encode trailing whitespace", () => {
    const raw = compose(fields({ body: `é ${long("word ", 100)}\nend \t\n` }));
    const { body } = splitMessage(raw);
    for (const line of body.split("\r\n")) assert.ok(line.length <= 76, `QP line of ${line.length}`);
    assert.doesNotMatch(body, /[ \t]\r\n/, "no line ends in whitespace");
    assert.match(body, /end =09|end=20=09/, "the trailing space and tab are encoded");
  });

  test("a body of more than 64 KiB keeps CRLF pairs whole", async () => {
    const text = long("Zeile mit Umlauten äöü und etwas mehr Text\n", 3000);
    const raw = compose(fields({ body: text }));
    assertWellFormed(raw, fields({ body: text }), "quoted-printable", true);
    const parsed = await simpleParser(raw);
    assert.equal(bodyText(parsed.text ?? ""), bodyText(text));
  });

  test("an address that cannot be written safely makes composing fail rather than send it", () => {
    const input = inputOf(fields());
    input.content.to = [{ name: "", address: "a@x.example\r\nBcc: evil@x.example" }];
    assert.throws(() => composePlainMime(input), /could not compose a safe To header/);
  });

  test("a message whose time is not a number is refused", () => {
    assert.throws(() => compose(fields({ date_created: Number.NaN })), RangeError);
  });

  test("composeMime gives the plain path's bytes for a plain message, as a promise", async () => {
    const message = fields({ subject: "Grüße", body: "Hallo\n" });
    const pending = composeMime(inputOf(message));
    assert.ok(pending instanceof Promise);
    assert.equal(await pending, compose(message));
  });

  test("Body together with Html or Text is refused", async () => {
    const input = inputOf(fields());
    input.content.html = "<p>x</p>";
    assert.throws(() => composePlainMime(input), /either Body or Html\/Text/);
    await assert.rejects(composeMime(input), /either Body or Html\/Text/);
  });
});
