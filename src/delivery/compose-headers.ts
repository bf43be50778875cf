import { encodeWord, encodeWords, foldLines, quoteString } from "nodemailer/lib/mime-funcs";
import type { Mailbox } from "../domain/addresses.js";
import type { ComposeInput } from "./compose.js";

/**
 * The message headers (From to Date) of every composed message, whatever its shape: the plain path
 * writes them before its content headers, the rich path puts them in place of MailComposer's, so
 * both paths write the very same header lines for the same content.
 *
 * Order: From, To, Cc, Reply-To, Subject, the custom headers as given, Message-ID, Date. That is
 * MailComposer's order for the standard fields (it writes Reply-To after Cc and before Subject);
 * MailComposer would put custom headers first, but the originator and recipients read best at the
 * top and the custom headers stay next to what the caller wrote.
 *
 * Every value goes through an encoder, never through plain concatenation: a line break in a
 * header-bound value becomes a space, other control characters, non-ASCII text and anything that
 * looks like an encoded-word become RFC 2047 encoded-words, display names with specials become
 * quoted-strings. Each folded header is then checked (printable ASCII, every continuation line
 * starting with whitespace, at most 998 octets); one that fails is re-encoded entirely as
 * encoded-words, and if even that could not pass the message is refused rather than sent.
 * Bcc is deliberately absent: those recipients are only in the envelope.
 */
export function messageHeaders(input: ComposeInput): string[] {
  const { content } = input;
  const headers = [addressHeader("From", [content.from]), addressHeader("To", content.to)];
  if (content.cc.length > 0) headers.push(addressHeader("Cc", content.cc));
  if (content.reply_to.length > 0) headers.push(addressHeader("Reply-To", content.reply_to));
  headers.push(textHeader("Subject", content.subject));
  for (const [name, value] of Object.entries(content.headers)) {
    headers.push(textHeader(customHeaderName(name), value));
  }
  headers.push(
    structuredHeader("Message-ID", messageIdValue(input.messageId)),
    structuredHeader("Date", dateValue(input.date)),
  );
  return headers;
}

/** Lines are folded at whitespace to this length, as MimeNode folds `Key: value`. */
const FOLD_LENGTH = 76;
/** RFC 5322 2.1.1: no line may be longer than this, CRLF excluded. */
export const MAX_LINE_OCTETS = 998;
/** MimeNode's chunk size for encoded-words: each one stays well under RFC 2047's 75 characters. */
const WORD_LENGTH = 52;

export const LINE_BREAKS = /\r\n|\r|\n/g;

/**
 * The text with every line break (CRLF, CR or LF) made CRLF. Without a CR every line break is an LF,
 * which a native string search finds for about a third of the regular expression's instructions
 * (a 1 KB body of LF lines: 6,500 against 16,000).
 */
export function crlfLines(text: string): string {
  return text.includes("\r") ? text.replace(LINE_BREAKS, "\r\n") : text.replaceAll("\n", "\r\n");
}
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
// What a folded header may consist of: lines of printable ASCII and HT, at most MAX_LINE_OCTETS each,
// every line after the first a continuation (blanks, then something else).
const SAFE_HEADER = new RegExp(
  `^[\\u0020-\\u007e\\t]{0,${MAX_LINE_OCTETS}}` +
    `(?:\\r\\n[ \\t](?=[ \\t]*[\\u0021-\\u007e])[\\u0020-\\u007e\\t]{0,${MAX_LINE_OCTETS - 1}})*$`,
);
// RFC 5322 3.6.8: a field name is printable ASCII without the colon.
const FIELD_NAME = /^[\u0021-\u0039\u003b-\u007e]+$/;
// Fields composition writes itself: a custom one would duplicate or contradict them (a second From,
// a Bcc header, a Content-Type that does not describe the body). The API refuses these names first.
const OWN_FIELDS = /^(from|to|cc|bcc|reply-to|subject|message-id|date|mime-version|content-.*)$/i;

/** From, To, Cc, Reply-To: `name <address>` items, names encoded or quoted as needed. */
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
  if (name) return `${encodeName(name, forceEncoding)} <${address}>`;
  // The caller's `<bob@x.test>` stays bracketed; a bare address with specials is bracketed anyway.
  return mailbox.bracketed || !PLAIN_ADDRESS.test(address) ? `<${address}>` : address;
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
 * Subject and custom headers: an unstructured value, encoded as MimeNode.encodeHeaderValue encodes
 * one (line breaks become spaces; a value with non-ASCII, a quote or a control character becomes
 * encoded-words), except that a value holding `=?` is always encoded, so that text that happens to
 * be (or look like) an encoded-word reaches the reader as the text that was sent, not as what it
 * decodes to.
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

/** A custom header's name as given, provided it is a field name and not one composition writes. */
function customHeaderName(name: string): string {
  if (!FIELD_NAME.test(name)) throw new Error(`${JSON.stringify(name)} is not a header field name`);
  if (OWN_FIELDS.test(name)) throw new Error(`the ${name} header is composed from the message, not given`);
  return name;
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

/**
 * RFC 5322 date-time in UTC, as MimeNode writes a Date: `Tue, 14 Nov 2023 22:13:20 +0000`. The text
 * changes once a second: the last one is kept (formatting a date costs about 3,500 instructions, and
 * messages accepted in the same second share it).
 */
function dateValue(epochMs: number): string {
  // A Date keeps whole milliseconds (truncated), so the second is that of the truncated time.
  const time = Math.trunc(Number(epochMs));
  const second = Math.floor(time / 1000);
  if (second !== lastDateSecond) {
    const date = new Date(time);
    if (Number.isNaN(date.getTime())) throw new RangeError(`date ${String(epochMs)} is not a time`);
    lastDateText = date.toUTCString().replace("GMT", "+0000");
    lastDateSecond = second;
  }
  return lastDateText;
}

let lastDateSecond = Number.NaN;
let lastDateText = "";

function fold(key: string, value: string): string {
  return foldLines(`${key}: ${value}`, FOLD_LENGTH);
}

/**
 * True when the folded header is printable ASCII (HT allowed), every line but the first is a
 * continuation (whitespace, then something other than whitespace: a line of blanks reads as the end
 * of the header block to some parsers) and no line is longer than 998 octets.
 */
function isSafeHeader(header: string): boolean {
  // One match over the whole header: splitting it into lines first cost as much as the checks.
  return SAFE_HEADER.test(header);
}

function checked(header: string): string {
  if (!isSafeHeader(header)) {
    // Unreachable for anything the encoders above produce; refusing beats sending a broken header.
    throw new Error(`could not compose a safe ${header.slice(0, header.indexOf(":"))} header`);
  }
  return header;
}

/**
 * MimeNode._getTextEncoding: Q (quoted-printable) when the text has more Latin letters than
 * non-ASCII and control characters, B (base64) otherwise.
 */
export function wordEncoding(value: string): "Q" | "B" {
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
