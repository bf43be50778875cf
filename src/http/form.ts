import { isUtf8 } from "node:buffer";
import { badByte, firstInvalidUtf8, notUtf8, parameterLabel } from "./utf8.js";

/**
 * application/x-www-form-urlencoded bodies, parsed as fast-querystring parses them (the parser
 * @fastify/formbody ships with): `+` is a space, percent-escapes are decoded, a `%` that starts no
 * escape (`50%`) is kept as sent, a key given twice collects its values in an array, and the result
 * has no prototype. Unlike fast-querystring, text that is not UTF-8 is refused (InvalidEncoding, naming
 * the parameter), whether its bytes came raw or as escapes (`Subject=caf%E9`): fast-querystring kept
 * `caf%E9` as text, and raw bytes became U+FFFD. Written by hand because fast-querystring's
 * character-by-character loop was 6% of the main thread with a 1 KB message (40 µs a body on the
 * benchmark VM), most of it turning `+` into spaces; this turns them in the raw bytes (a `+` byte is
 * never part of a multi-byte UTF-8 character, and an escaped `%2B` is not a `+` byte), splits with the
 * engine's string search and decodes with decodeURIComponent. test/unit-domain compares the two on a
 * corpus of awkward inputs.
 */
export function parseFormBody(body: Buffer): Record<string, string | string[]> {
  // One native pass (simdutf): toString would turn each byte that is not UTF-8 into U+FFFD silently.
  if (!isUtf8(body)) throw rawBytesNotUtf8(body);
  for (let i = 0; i < body.length; i++) if (body[i] === PLUS) body[i] = SPACE;
  const input = body.toString("utf8");
  const result = Object.create(null) as Record<string, string | string[]>;
  let start = 0;
  while (start <= input.length) {
    let end = input.indexOf("&", start);
    if (end < 0) end = input.length;
    if (end > start) {
      const equals = input.indexOf("=", start);
      const hasValue = equals >= 0 && equals < end;
      const key = decode(input.slice(start, hasValue ? equals : end), undefined);
      const value = hasValue ? decode(input.slice(equals + 1, end), key) : "";
      const current = result[key];
      if (current === undefined) result[key] = value;
      else if (Array.isArray(current)) current.push(value);
      else result[key] = [current, value];
    }
    start = end + 1;
  }
  return result;
}

const PLUS = 0x2b;
const SPACE = 0x20;

/** `key` is the parameter whose value `text` is, or undefined when `text` is a key. */
function decode(text: string, key: string | undefined): string {
  if (!text.includes("%")) return text;
  try {
    return decodeURIComponent(text);
  } catch {
    return decodeByHand(text, key);
  }
}

const ESCAPE = /%[0-9A-Fa-f]{2}/g;

/**
 * decodeURIComponent refuses both a `%` that starts no escape and escapes whose bytes are not UTF-8:
 * the first is kept as sent (fast-querystring keeps such text whole), the second is refused.
 */
function decodeByHand(text: string, key: string | undefined): string {
  const parts: Buffer[] = [];
  let last = 0;
  for (const match of text.matchAll(ESCAPE)) {
    parts.push(Buffer.from(text.slice(last, match.index), "utf8"), Buffer.from(match[0].slice(1), "hex"));
    last = (match.index as number) + 3;
  }
  parts.push(Buffer.from(text.slice(last), "utf8"));
  const bytes = Buffer.concat(parts);
  if (!isUtf8(bytes)) {
    const what = key === undefined ? "A parameter name" : parameterLabel(key);
    throw notUtf8(what, "its percent-escapes decode to bytes that are not UTF-8: é is %C3%A9, not %E9");
  }
  return bytes.toString("utf8");
}

/** Which parameter holds the first byte that is not UTF-8 (this body is being refused). */
function rawBytesNotUtf8(body: Buffer): Error {
  const offset = firstInvalidUtf8(body);
  const start = body.lastIndexOf(AMPERSAND, offset) + 1;
  const equals = body.indexOf(EQUALS, start);
  const inName = equals < 0 || equals > offset;
  const what = inName
    ? "A parameter name"
    : parameterLabel(leniently(body.subarray(start, equals).toString("utf8")));
  return notUtf8(what, badByte(body, offset));
}

/** A key as well as it can be read, only to name it in an error. */
function leniently(text: string): string {
  const spaced = text.replaceAll("+", " ");
  try {
    return decodeURIComponent(spaced);
  } catch {
    return spaced;
  }
}

const AMPERSAND = 0x26;
const EQUALS = 0x3d;
