import * as base64 from "nodemailer/lib/base64";
import { encodeWord, encodeWords, foldLines, isPlainText, quoteString } from "nodemailer/lib/mime-funcs";
import * as qp from "nodemailer/lib/qp";
import { type Mailbox, parseAddressList } from "../domain/addresses.js";
import type { EmailMessageRow } from "../store/store.js";

/**
 * Builds the message's MIME from its stored row, as one string, synchronously. Mailroom only ever
 * composes one shape (a single text/plain or text/html part), so this writes it directly instead of
 * going through nodemailer's MailComposer and its stream pipelines (which cost more CPU than the
 * rest of a delivery), while keeping nodemailer's pure encoders (RFC 2047 words, quoted-strings,
 * header folding, quoted-printable, base64) and the choices MailComposer made: same headers in the
 * same order, same transfer encoding. For most rows the bytes are the ones MailComposer wrote; they
 * differ on purpose where it was wrong or untidy: a bare CR in the body is a line break (CRLF), so
 * is every LF before base64, quoted-printable is soft-wrapped per line, text that looks like an
 * encoded-word is encoded (so it reads back as sent), and an empty body still gets its charset and
 * transfer encoding.
 *
 * Every header value goes through an encoder, never through plain concatenation: a line break in a
 * header-bound value becomes a space, other control characters, non-ASCII text and anything that
 * looks like an encoded-word become RFC 2047 encoded-words, display names with specials become
 * quoted-strings. Each folded header is then checked (printable ASCII, every continuation line
 * starting with whitespace, at most 998 octets); one that fails is re-encoded entirely as
 * encoded-words, and if even that could not pass the message is refused rather than sent.
 *
 * Bcc is deliberately absent: those recipients are only in the envelope. The output depends on the
 * row alone (Date is the acceptance time), and it is stored at the first attempt so that every
 * retry sends the very same bytes.
 */
export function composeMime(message: EmailMessageRow): string {
  const html = message.type.toLowerCase().startsWith("text/html");
  const cc = message.cc_addresses.trim() ? parseAddressList(message.cc_addresses) : [];
  const body = encodeBody(message.body);
  // The order MailComposer wrote them in.
  const headers = [
    addressHeader("From", parseAddressList(message.from_address)),
    addressHeader("To", parseAddressList(message.to_addresses)),
  ];
  if (cc.length > 0) headers.push(addressHeader("Cc", cc));
  headers.push(
    textHeader("Subject", message.subject),
    structuredHeader("Message-ID", messageIdValue(message.message_id)),
    structuredHeader("Date", dateValue(message.date_created)),
    `Content-Transfer-Encoding: ${body.encoding}`,
    "MIME-Version: 1.0",
    `Content-Type: ${html ? "text/html" : "text/plain"}; charset=utf-8`,
  );
  return `${headers.join("\r\n")}\r\n\r\n${body.content}`;
}

/** Lines are folded at whitespace to this length, as MimeNode folds `Key: value`. */
const FOLD_LENGTH = 76;
/** RFC 5322 2.1.1: no line may be longer than this, CRLF excluded. */
const MAX_LINE_OCTETS = 998;
/** MimeNode's chunk size for encoded-words: each one stays well under RFC 2047's 75 characters. */
const WORD_LENGTH = 52;

const LINE_BREAKS = /\r\n|\r|\n/g;
// Control characters (HT excepted, it is ordinary whitespace) and DEL have no place in a header as
// they are; MimeNode forces the value into an encoded-word then, and so does this.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const HEADER_CONTROLS = /[\u0000-\u0008\u000a-\u001f\u007f]/;
// What MimeNode removes from a msg-id (HT stays: it separates the ids of a multi-id value).
// biome-ignore lint/suspicious/noControlCharactersInRegex: removing control characters is the point
const ID_CONTROLS = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g;
// A display name of atext words can stand bare (MimeNode._encodeAddressName).
const BARE_NAME = /^[\w ]*$/;
const PRINTABLE_ASCII = /^[\u0020-\u007e]*$/;
// An address without specials may stand bare when it has no display name (MimeNode's PLAIN_ADDRESS).
const PLAIN_ADDRESS = /^[^\s"(),:;<>@[\\\]]+@[^\s"(),:;<>@[\\\]]+$/;
// What a folded header may consist of: printable ASCII and HT, nothing else, no line too long.
const HEADER_LINE = /^[\u0020-\u007e\t]*$/;
const CONTINUATION_LINE = /^[ \t]+[^ \t]/;

/** From, To, Cc: `name <address>` items, names encoded or quoted as needed. */
function addressHeader(key: string, mailboxes: readonly Mailbox[]): string {
  const folded = fold(key, mailboxes.map((mailbox) => formatMailbox(mailbox, false)).join(", "));
  if (isSafeHeader(folded)) return folded;
  // A name that folding could not fit (a 2,000 character word, a run of spaces): as encoded-words,
  // which split anywhere and carry no whitespace of their own.
  return checked(fold(key, mailboxes.map((mailbox) => formatMailbox(mailbox, true)).join(", ")));
}

function formatMailbox(mailbox: Mailbox, forceEncoding: boolean): string {
  const address = mailbox.address;
  const name = mailbox.name.replace(LINE_BREAKS, " ");
  if (!name) return PLAIN_ADDRESS.test(address) ? address : `<${address}>`;
  return `${encodeName(name, forceEncoding)} <${address}>`;
}

/**
 * A display name as MimeNode._encodeAddressName writes it (bare, quoted-string or encoded-word),
 * except that a name holding `=?` is always an encoded-word: many readers (mailparser among them)
 * decode encoded-word look-alikes even inside a quoted-string, so quoting would not keep its text.
 */
function encodeName(name: string, forceEncoding: boolean): string {
  if (!forceEncoding) {
    if (BARE_NAME.test(name)) return name;
    if (PRINTABLE_ASCII.test(name) && !name.includes("=?")) return quoteString(name);
  }
  return encodeWord(name, wordEncoding(name), WORD_LENGTH);
}

/**
 * Subject: an unstructured value, encoded as MimeNode.encodeHeaderValue encodes one (line breaks
 * become spaces; a value with non-ASCII, a quote or a control character becomes encoded-words),
 * except that a value holding `=?` is always encoded, so that text that happens to be (or look
 * like) an encoded-word reaches the reader as the text that was sent, not as what it decodes to.
 */
function textHeader(key: string, value: string): string {
  const text = value.replace(LINE_BREAKS, " ");
  if (text === "") return `${key}:`;
  const encoding = wordEncoding(text);
  const plain =
    HEADER_CONTROLS.test(text) || text.includes("=?")
      ? encodeWord(text, encoding, WORD_LENGTH)
      : encodeWords(text, encoding, WORD_LENGTH, true);
  const folded = fold(key, plain);
  if (isSafeHeader(folded)) return folded;
  return checked(fold(key, encodeWord(text, encoding, WORD_LENGTH)));
}

/** Message-ID and Date: values Mailroom made itself, still checked like any other header. */
function structuredHeader(key: string, value: string): string {
  return checked(fold(key, value));
}

/** As MimeNode writes a Message-ID: no line breaks or control characters, inside angle brackets. */
function messageIdValue(messageId: string): string {
  let value = messageId.replace(LINE_BREAKS, " ").replace(ID_CONTROLS, "");
  if (!value.startsWith("<")) value = `<${value}`;
  if (!value.endsWith(">")) value = `${value}>`;
  return value;
}

/** RFC 5322 date-time in UTC, as MimeNode writes a Date: `Tue, 14 Nov 2023 22:13:20 +0000`. */
function dateValue(epochMs: number): string {
  const date = new Date(Number(epochMs));
  if (Number.isNaN(date.getTime())) throw new RangeError(`date_created ${String(epochMs)} is not a time`);
  return date.toUTCString().replace("GMT", "+0000");
}

function fold(key: string, value: string): string {
  return foldLines(`${key}: ${value}`, FOLD_LENGTH);
}

/**
 * True when the folded header is printable ASCII (HT allowed), every line but the first is a
 * continuation (whitespace, then something other than whitespace: a line of blanks reads as the end
 * of the header block to some parsers) and no line is longer than 998 octets.
 */
function isSafeHeader(header: string): boolean {
  const lines = header.split("\r\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    if (line.length > MAX_LINE_OCTETS || !HEADER_LINE.test(line)) return false;
    if (i > 0 && !CONTINUATION_LINE.test(line)) return false;
  }
  return true;
}

function checked(header: string): string {
  if (!isSafeHeader(header)) {
    // Unreachable for anything the encoders above produce; refusing beats sending a broken header.
    throw new Error(`could not compose a safe ${header.slice(0, header.indexOf(":"))} header`);
  }
  return header;
}

/**
 * The body with CRLF line endings, and its transfer encoding as MimeNode chooses it for a text
 * part: 7bit when it is printable ASCII (HT, CR, LF allowed) with no line over 76 characters;
 * otherwise quoted-printable when it has more Latin letters than other characters, base64 when not.
 * Quoted-printable and base64 lines are at most 76 characters. Like MailComposer, a body that does
 * not end with a line break gets one.
 */
function encodeBody(body: string): { encoding: string; content: string } {
  const text = body.replace(LINE_BREAKS, "\r\n");
  if (text === "") return { encoding: "7bit", content: "" };
  let encoding: string;
  let content: string;
  if (isPlainText(text) && !hasLineLongerThan(text, 76)) {
    encoding = "7bit";
    content = text;
  } else if (wordEncoding(text) === "Q") {
    encoding = "quoted-printable";
    // Encoded as a whole (so whitespace before a line break is encoded), soft-wrapped line by line:
    // over the whole text qp.wrap gives a 75 character line a needless soft break (its window
    // ends between CR and LF), and over LF text, as MailComposer used it, it broke lines early
    // wherever its window spanned a line break. Every CR and LF left after encoding is one of
    // the body's CRLF pairs, so splitting there is splitting at the body's own lines.
    content = qp
      .encode(text)
      .split("\r\n")
      .map((line) => qp.wrap(line, 76))
      .join("\r\n");
  } else {
    encoding = "base64";
    content = base64.wrap(base64.encode(text), 76);
  }
  return { encoding, content: content.endsWith("\n") ? content : `${content}\r\n` };
}

/**
 * MimeNode._getTextEncoding: Q (quoted-printable) when the text has more Latin letters than
 * non-ASCII and control characters, B (base64) otherwise.
 */
function wordEncoding(value: string): "Q" | "B" {
  let nonLatin = 0;
  let latin = 0;
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code <= 0x08 || code === 0x0b || code === 0x0c || (code >= 0x0e && code <= 0x1f) || code >= 0x80) {
      nonLatin++;
    } else if ((code >= 0x41 && code <= 0x5a) || (code >= 0x61 && code <= 0x7a)) {
      latin++;
    }
  }
  return nonLatin < latin ? "Q" : "B";
}

/**
 * nodemailer's hasLongerLines without its regular expression (`^.{n,}` with the m flag, the costliest
 * step of composing a 1 KB body): true when a line of `text` is longer than `length` characters, lines
 * ending at CR, LF, U+2028 or U+2029, and always true past 128 KiB (such bodies are always encoded).
 */
export function hasLineLongerThan(text: string, length: number): boolean {
  if (text.length > 128 * 1024) return true;
  // Between two LFs (found natively), only a stretch longer than `length` needs a closer look:
  // a CR, U+2028 or U+2029 inside it may still split it into short lines.
  for (let start = 0; start < text.length; ) {
    const lf = text.indexOf("\n", start);
    const end = lf < 0 ? text.length : lf;
    if (end - start > length) {
      let run = 0;
      for (let i = start; i < end; i++) {
        const c = text.charCodeAt(i);
        if (c === 13 || c === 0x2028 || c === 0x2029) run = 0;
        else if (++run > length) return true;
      }
    }
    start = end + 1;
  }
  return false;
}
