import { createHash } from "node:crypto";
import { compile } from "html-to-text";
import MailComposer, {
  type MailComposerAlternative,
  type MailComposerAttachment,
} from "nodemailer/lib/mail-composer";
import type { AttachmentRef, EmailContent } from "../model/email-message.js";
import type { ComposeInput } from "./compose.js";
import { crlfLines, MAX_LINE_OCTETS, messageHeaders } from "./compose-headers.js";
import { isHtmlType } from "./compose-plain.js";

/**
 * The MIME of every message the plain path does not write (Html, Text with Html, attachments),
 * through nodemailer's MailComposer, which builds the tree:
 * - Html and Text: multipart/alternative, text first; Html alone gets a text part derived from it;
 * - attachments: multipart/mixed, the body part(s) first, then the attachments in order;
 * - an attachment with a content_id is inline (Content-ID, Content-Disposition inline) and sits
 *   beside the HTML in multipart/related, where the HTML refers to it as `cid:…`.
 *
 * The message headers are not MailComposer's: its root header block is replaced by the header lines
 * of compose-headers.ts (the plain path's), followed by the MIME-Version and Content-Type
 * MailComposer wrote for the tree, so both paths write the same headers for the same content, and
 * nothing else (no X-Mailer, no Bcc). The output depends on the input alone: the boundaries are
 * derived from the Message-ID, and the Message-ID and Date are the input's.
 */
export async function composeRichMime(input: ComposeInput): Promise<string> {
  const headers = messageHeaders(input);
  const alternatives = bodyParts(input.content);
  const attachments = input.content.attachments.map((ref) => attachment(ref, input.attachments));
  const composer = new MailComposer({
    alternatives,
    attachments,
    // Given so that MailComposer draws nothing random or from the clock; replaced below anyway.
    messageId: input.messageId,
    date: new Date(input.date),
    baseBoundary: boundaryBase(input.messageId, [
      ...alternatives,
      ...attachments.filter((part) => part.contentTransferEncoding === "7bit"),
    ]),
    newline: "win",
    // Content is always bytes at hand: nothing may make MailComposer read a file or a URL.
    disableFileAccess: true,
    disableUrlAccess: true,
  });
  const raw = (await composer.compile().build()).toString("latin1");
  assertWireSafe(raw);
  return withMessageHeaders(raw, headers);
}

/**
 * The body parts, in order. Body (Restcomm's single part) is typed by Type. Text and Html become
 * alternatives, text first. They are given as `alternatives` rather than `text`/`html` because
 * MailComposer drops an empty `text`, and an empty part is still what the caller sent. (composeMime
 * has already refused Body together with Html or Text.)
 */
function bodyParts(content: EmailContent): MailComposerAlternative[] {
  const { body, type, html, text } = content;
  if (body !== null) return [textPart(isHtmlType(type) ? "text/html" : "text/plain", body)];
  if (html === null) return [textPart("text/plain", text ?? "")];
  return [textPart("text/plain", text ?? htmlToText(html)), textPart("text/html", html)];
}

/** Line breaks as the plain path writes them (CRLF), so no bare CR reaches the wire. */
function textPart(type: "text/plain" | "text/html", text: string): MailComposerAlternative {
  return { contentType: `${type}; charset=utf-8`, content: crlfLines(text) };
}

/**
 * The text alternative of an HTML-only message: what a plain-text reader (or a spam filter
 * comparing the two) sees.
 * - No hard wrap: quoted-printable soft-breaks long lines on the wire and the reader's client
 *   wraps paragraphs to its own width; a wrap at 76 would leave ragged lines on a narrow screen.
 * - Links as `text [url]`, the URL once when the text already is the URL: the reader can follow
 *   them.
 * - Images skipped: inline `cid:` images and tracking pixels mean nothing in text, and their alt
 *   texts are mostly "logo" or "spacer".
 * - Table cells as blocks: mail HTML lays out with tables, and by default cells run together.
 * Compiled once: converting is then only the walk over the document.
 */
const htmlToText = compile({
  wordwrap: false,
  selectors: [
    { selector: "a", options: { hideLinkHrefIfSameAsText: true, linkBrackets: ["[", "]"] } },
    { selector: "img", format: "skip" },
    { selector: "td", format: "block" },
    { selector: "th", format: "block" },
  ],
});

/**
 * One attachment with its bytes. The bytes must be the ones the reference names (same size and
 * SHA-256): stored bytes are shared by digest, so a mix-up would send someone else's file.
 * The filename is passed as it is (MimeNode encodes it: RFC 2231 in Content-Disposition, an
 * encoded-word in Content-Type's name, quoted or encoded whenever it holds specials or line breaks)
 * and is only ever a name: the content is the bytes, never a path.
 */
function attachment(ref: AttachmentRef, bytes: ReadonlyMap<string, Uint8Array>): MailComposerAttachment {
  const data = bytes.get(ref.sha256);
  if (data === undefined) {
    throw new Error(`the bytes of attachment ${JSON.stringify(ref.filename)} (${ref.sha256}) are missing`);
  }
  const content = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (content.length !== ref.size || createHash("sha256").update(content).digest("hex") !== ref.sha256) {
    throw new Error(`the bytes given for attachment ${JSON.stringify(ref.filename)} are not ${ref.sha256}`);
  }
  const contentType = attachmentType(ref.content_type);
  return {
    // An empty name would make MailComposer invent one (`attachment-1.bin`): rather none at all.
    filename: ref.filename === "" ? false : ref.filename,
    content,
    contentType,
    contentTransferEncoding: transferEncoding(contentType, content),
    ...(ref.content_id === null ? {} : { cid: ref.content_id, contentDisposition: "inline" }),
  };
}

// RFC 2045 type/subtype tokens, then parameters (MimeNode parses and rewrites those).
const MEDIA_TYPE = /^[A-Za-z0-9!#$&^_.+-]+\/[A-Za-z0-9!#$&^_.+-]+(\s*;.*)?$/s;
// biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
const CONTROLS = /[\u0000-\u001f\u007f]/;

/** The content type as given, refused when it is not one or would make the part a multipart node. */
function attachmentType(contentType: string): string {
  if (!MEDIA_TYPE.test(contentType) || CONTROLS.test(contentType) || /^multipart\//i.test(contentType)) {
    throw new Error(`${JSON.stringify(contentType)} is not a content type for an attachment`);
  }
  return contentType;
}

/**
 * base64, except for message/* (RFC 2046 5.2.1 forbids encoding those): 7bit when the bytes allow
 * it, base64 otherwise all the same, as the wire takes only ASCII lines of at most 998 octets.
 */
function transferEncoding(contentType: string, content: Buffer): "7bit" | "base64" {
  return /^message\//i.test(contentType) && isSevenBit(content) ? "7bit" : "base64";
}

/** ASCII without NUL, CR only before LF, no line over 998 octets. */
function isSevenBit(content: Buffer): boolean {
  let line = 0;
  for (let i = 0; i < content.length; i++) {
    const c = content[i] as number;
    if (c === 0 || c > 0x7f || (c === 0x0d && content[i + 1] !== 0x0a)) return false;
    if (c === 0x0a) line = 0;
    else if (c !== 0x0d && ++line > MAX_LINE_OCTETS) return false;
  }
  return true;
}

/**
 * The shared part of the multipart boundaries (MimeNode makes `--_NmP-{base}-Part_{n}`), derived
 * from the Message-ID so that composing again gives the same bytes. A part written as it is (7bit
 * text, a 7bit message/*) could hold the derived value, and a boundary must not occur in its parts:
 * then the next derivation is taken. Encoded content cannot hold it (base64 has no `-`, and
 * quoted-printable only adds `=` and upper-case hex to text that did not hold it).
 */
function boundaryBase(messageId: string, parts: ReadonlyArray<MailComposerAlternative>): string {
  const texts = parts.map(({ content }) =>
    typeof content === "string" ? content : Buffer.isBuffer(content) ? content.toString("latin1") : "",
  );
  for (let round = 0; ; round++) {
    const base = createHash("sha256").update(`${round}\n${messageId}`).digest("hex").slice(0, 16);
    if (!texts.some((text) => text.includes(base))) return base;
  }
}

// What every line of the message must be: ASCII without NUL, CRLF line breaks, at most 998 octets.
// biome-ignore lint/suspicious/noControlCharactersInRegex: NUL is what is looked for
const NOT_ASCII = /[^\u0001-\u007f]/;
const BARE_LINE_BREAK = /\r(?!\n)|(?<!\r)\n/;

/** Refuses a message that could not go over SMTP as it is (unreachable for what MimeNode writes). */
function assertWireSafe(raw: string): void {
  if (NOT_ASCII.test(raw) || BARE_LINE_BREAK.test(raw) || hasLongLine(raw)) {
    throw new Error("the composed message is not ASCII lines of at most 998 octets ending in CRLF");
  }
}

/**
 * True when a line (CRLF excluded) is longer than 998 octets. By the engine's LF search: the regular
 * expression /[^\r\n]{999}/ took 35 ms on a message with a 100 KB attachment (docs/performance.md).
 */
function hasLongLine(raw: string): boolean {
  for (let start = 0; ; ) {
    const lf = raw.indexOf("\n", start);
    // Every LF follows a CR here (BARE_LINE_BREAK checked that), so a line ends one before it.
    const end = lf < 0 ? raw.length : lf - 1;
    if (end - start > MAX_LINE_OCTETS) return true;
    if (lf < 0) return false;
    start = lf + 1;
  }
}

// MailComposer's root fields: the ones kept describe the tree, the others are the input's anyway.
const KEPT_FIELDS = new Set(["mime-version", "content-type", "content-transfer-encoding"]);
const REPLACED_FIELDS = new Set(["message-id", "date"]);

/** MailComposer's message with the message headers in place of its own root header fields. */
function withMessageHeaders(raw: string, headers: string[]): string {
  const end = raw.indexOf("\r\n\r\n");
  if (end < 0) throw new Error("MailComposer wrote no header block");
  const fields: string[] = [];
  for (const line of raw.slice(0, end).split("\r\n")) {
    if (line.startsWith(" ") || line.startsWith("\t")) {
      fields[fields.length - 1] += `\r\n${line}`;
    } else {
      fields.push(line);
    }
  }
  const kept = fields.filter((field) => {
    const name = field.slice(0, field.indexOf(":")).toLowerCase();
    if (KEPT_FIELDS.has(name)) return true;
    if (REPLACED_FIELDS.has(name)) return false;
    // Never sent unseen: a header MailComposer would add is a decision to make here first.
    throw new Error(`MailComposer wrote an unexpected ${name} header`);
  });
  return `${[...headers, ...kept].join("\r\n")}${raw.slice(end)}`;
}
