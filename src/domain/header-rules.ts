import { ApiError } from "./errors.js";
import { quoteInput } from "./quote.js";

/**
 * Headers Mailroom writes itself, or that only a mail server may write: a custom header of one of
 * these names would contradict the message (or forge its signature), so it is refused, not dropped.
 */
const OWNED = new Set([
  "from",
  "to",
  "cc",
  "bcc",
  "reply-to",
  "subject",
  "sender",
  "message-id",
  "date",
  "mime-version",
  "dkim-signature",
  "arc-seal",
  "arc-message-signature",
  "arc-authentication-results",
  "authentication-results",
  "return-path",
  "received",
  "delivered-to",
]);

// RFC 5322 field names: printable ASCII except the colon.
const FIELD_NAME = /^[\u0021-\u0039\u003b-\u007e]{1,76}$/;
// CR and LF end an SMTP header line; letting them through would let a caller add headers or recipients.
// Other control characters have no business in a header either (C1 too: U+0085 is a line break to
// some readers); tab is ordinary whitespace.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const HEADER_UNSAFE = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f]/;

// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f]/;

/** True when `text` holds a control character (tab and line breaks included): names, tags, filters, credentials. */
export function containsControl(text: string): boolean {
  return CONTROL.test(text);
}

/** `U+000D`: how an error names a character it refuses (the character itself may be invisible or break XML). */
export function codePoint(char: string): string {
  return `U+${(char.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, "0")}`;
}

/** Refuses a value bound for a header (From, Subject, a custom header…) that holds a line break or control. */
export function rejectLineBreaks(name: string, value: string): void {
  const control = HEADER_UNSAFE.exec(value);
  if (control) {
    throw new ApiError(
      "HeaderInjection",
      `${name} contains a line break or control character (${codePoint(control[0])}), which is not allowed in an email header.`,
    );
  }
  rejectUnsafeCharacters(name, value);
}

// Unicode's non-characters (U+FDD0–U+FDEF and the last two code points of every plane) are for a
// program's internal use and must not be interchanged; U+FFFE and U+FFFF are not even XML 1.0
// characters, so one of them in a stored message breaks every XML answer that shows it. Without the
// `u` flag (faster), a supplementary non-character is its surrogate pair.
export const NON_CHARACTER =
  /[\ufdd0-\ufdef\ufffe\uffff]|[\ud83f\ud87f\ud8bf\ud8ff\ud93f\ud97f\ud9bf\ud9ff\uda3f\uda7f\udabf\udaff\udb3f\udb7f\udbbf\udbff][\udffe\udfff]/;

/**
 * What in `text` neither email nor XML 1.0 can carry, in words (`the non-character U+FFFE`, `an unpaired
 * surrogate (U+D800)`), or undefined when it is clean. A JSON `\ud800` escape is the only way to send
 * an unpaired surrogate; `isWellFormed` finds one without a regular expression, and at once for the
 * (common) strings V8 keeps one byte per character.
 */
export function describeUnsafeCharacter(text: string): string | undefined {
  const nonCharacter = NON_CHARACTER.exec(text);
  if (nonCharacter) return `the non-character ${codePoint(nonCharacter[0])}`;
  // Node 20 has it (ES2024); the ES2022 library this project compiles against does not declare it.
  if ((text as string & { isWellFormed(): boolean }).isWellFormed()) return undefined;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0xd800 || unit > 0xdfff) continue;
    const next = text.charCodeAt(i + 1);
    if (unit <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) i++;
    else return `an unpaired surrogate (U+${unit.toString(16).toUpperCase()})`;
  }
  return undefined;
}

/** Refuses an email parameter holding what email and XML cannot carry (InvalidCharacter, 13031). */
export function rejectUnsafeCharacters(name: string, value: string): void {
  const unsafe = describeUnsafeCharacter(value);
  if (unsafe !== undefined) {
    throw new ApiError(
      "InvalidCharacter",
      `${name} contains ${unsafe}, which email and XML cannot carry; remove it.`,
    );
  }
}

const MAX_VALUE_LENGTH = 2000;

/** Checks custom headers (name → value) and returns them as given; throws on the first problem. */
export function checkCustomHeaders(headers: Record<string, string>): Record<string, string> {
  const seen = new Set<string>();
  for (const [name, value] of Object.entries(headers)) {
    if (!FIELD_NAME.test(name)) {
      throw new ApiError(
        "InvalidHeader",
        `Header name ${quoteInput(name)} is not valid: use 1 to 76 printable ASCII characters without spaces or colons.`,
      );
    }
    const lower = name.toLowerCase();
    if (OWNED.has(lower) || lower.startsWith("content-")) {
      throw new ApiError(
        "ReservedHeader",
        `Header "${name}" is written by Mailroom and cannot be set in Headers; use the parameter for it (From, To, CC, ReplyTo, Subject, Type…) if there is one.`,
      );
    }
    if (seen.has(lower)) {
      throw new ApiError("InvalidHeader", `Header "${name}" is given twice (names are case-insensitive).`);
    }
    seen.add(lower);
    // The length first: it costs nothing, and a 10 MB value is then never scanned.
    if (value.length > MAX_VALUE_LENGTH) {
      throw new ApiError(
        "InvalidHeader",
        `Header "${name}" is ${value.length} characters long; the maximum is ${MAX_VALUE_LENGTH}.`,
      );
    }
    rejectLineBreaks(`Header "${name}"`, value);
  }
  return { ...headers };
}
