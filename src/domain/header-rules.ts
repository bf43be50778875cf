import { ApiError } from "./errors.js";

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
// Other control characters have no business in a header either; tab is ordinary whitespace.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const HEADER_UNSAFE = /[\u0000-\u0008\u000a-\u001f\u007f]/;

// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f]/;

/** True when `text` holds a control character (tab and line breaks included): names, tags, filters, credentials. */
export function containsControl(text: string): boolean {
  return CONTROL.test(text);
}

/** Refuses a value bound for a header (From, Subject, a custom header…) that holds a line break or control. */
export function rejectLineBreaks(name: string, value: string): void {
  if (HEADER_UNSAFE.test(value)) {
    throw new ApiError(
      "HeaderInjection",
      `${name} contains a line break or control character, which is not allowed in an email header.`,
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
        `Header name "${printable(name)}" is not valid: use 1 to 76 printable ASCII characters without spaces or colons.`,
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
    rejectLineBreaks(`Header "${name}"`, value);
    if (value.length > MAX_VALUE_LENGTH) {
      throw new ApiError(
        "InvalidHeader",
        `Header "${name}" is ${value.length} characters long; the maximum is ${MAX_VALUE_LENGTH}.`,
      );
    }
  }
  return { ...headers };
}

function printable(text: string): string {
  return JSON.stringify(text).slice(1, -1);
}
