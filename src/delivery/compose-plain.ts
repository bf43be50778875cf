import * as base64 from "nodemailer/lib/base64";
import { isPlainText } from "nodemailer/lib/mime-funcs";
import * as qp from "nodemailer/lib/qp";
import type { ComposeInput } from "./compose.js";
import { crlfLines, messageHeaders, wordEncoding } from "./compose-headers.js";

/**
 * The MIME of a message of one part (Restcomm's Body typed by Type, or Text alone; no attachments),
 * as one string, synchronously; null for any other shape (see compose-rich.ts).
 *
 * This is the hot path: nearly every message has this shape, so it writes the message directly
 * instead of going through nodemailer's MailComposer and its stream pipelines (which cost more CPU
 * than the rest of a delivery), while keeping nodemailer's pure encoders (RFC 2047 words,
 * quoted-strings, header folding, quoted-printable, base64) and the choices MailComposer made: same
 * headers in the same order, same transfer encoding. For most messages the bytes are the ones
 * MailComposer wrote; they differ on purpose where it was wrong or untidy: a bare CR in the body is
 * a line break (CRLF), so is every LF before base64, quoted-printable is soft-wrapped per line,
 * text that looks like an encoded-word is encoded (so it reads back as sent), an empty body still
 * gets its charset and transfer encoding, and a bracketed bare address stays bracketed.
 *
 * The message headers are compose-headers.ts's (shared with the rich path); the output depends on
 * the input alone (Date is the acceptance time), and it is stored at the first attempt so that
 * every retry sends the very same bytes.
 */
export function composePlainMime(input: ComposeInput): string | null {
  const part = plainPart(input);
  if (part === null) return null;
  const body = encodeBody(part.text);
  const headers = messageHeaders(input);
  // The order MailComposer wrote them in.
  headers.push(
    `Content-Transfer-Encoding: ${body.encoding}`,
    "MIME-Version: 1.0",
    `Content-Type: ${part.html ? "text/html" : "text/plain"}; charset=utf-8`,
  );
  return `${headers.join("\r\n")}\r\n\r\n${body.content}`;
}

/** The one part of a plain message, or null when the content needs more than one. */
function plainPart(input: ComposeInput): { text: string; html: boolean } | null {
  const { body, type, html, text, attachments } = input.content;
  if (body !== null && (html !== null || text !== null)) {
    throw new Error("a message has either Body or Html/Text, not both");
  }
  if (attachments.length > 0 || html !== null) return null;
  if (body !== null) return { text: body, html: isHtmlType(type) };
  return { text: text ?? "", html: false };
}

/** Restcomm's Type decides the part of a Body: text/html, or text/plain for anything else. */
export function isHtmlType(type: string | null): boolean {
  return type?.toLowerCase().startsWith("text/html") ?? false;
}

/**
 * The body with CRLF line endings, and its transfer encoding as MimeNode chooses it for a text
 * part: 7bit when it is printable ASCII (HT, CR, LF allowed) with no line over 76 characters;
 * otherwise quoted-printable when it has more Latin letters than other characters, base64 when not.
 * Quoted-printable and base64 lines are at most 76 characters. Like MailComposer, a body that does
 * not end with a line break gets one.
 */
function encodeBody(body: string): { encoding: string; content: string } {
  const text = crlfLines(body);
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
