import { AddressListError, type Mailbox, parseAddressList } from "./addresses.js";
import { ApiError, type ErrorKind } from "./errors.js";
import { optionalText } from "./params.js";

/** Restcomm documents a 160 character subject; Restcomm truncated, Mailroom refuses instead. */
export const MAX_SUBJECT_LENGTH = 160;
/** Most relays refuse more than 100 RCPT TO in one transaction. */
export const MAX_RECIPIENTS = 100;
export const DEFAULT_TYPE = "text/plain; charset=UTF-8";

/** A send request that passed every check: what the store accepts and delivery later composes. */
export interface ValidatedEmail {
  from: Mailbox;
  to: Mailbox[];
  cc: Mailbox[];
  bcc: Mailbox[];
  subject: string;
  body: string;
  type: string;
  statusCallback: string | null;
}

type Params = Record<string, unknown>;

// Restcomm checks the required parameters in this order and names the first one missing.
const REQUIRED = [
  ["From", "FromMissing"],
  ["To", "ToMissing"],
  ["Body", "BodyMissing"],
  ["Subject", "SubjectMissing"],
] as const satisfies ReadonlyArray<readonly [string, ErrorKind]>;

/**
 * Checks a Restcomm `Email/Messages` POST (form or JSON) and returns the message to store.
 * Throws ApiError with the first problem found; nothing is trimmed away or shortened silently.
 */
export function validateEmailRequest(params: Params): ValidatedEmail {
  for (const [name, kind] of REQUIRED) {
    const value = params[name];
    // An empty Body is a legitimate email; the other three are meaningless when empty.
    const empty = value === undefined || value === null || (name !== "Body" && isBlank(value));
    if (empty) throw new ApiError(kind, `${name} can not be null.`);
  }

  const fromText = singleText(params, "From");
  const subject = singleText(params, "Subject");
  const body = singleText(params, "Body");
  const typeText = params.Type === undefined ? undefined : singleText(params, "Type");

  rejectLineBreaks("From", fromText);
  const from = parseAddresses("From", fromText, "InvalidFrom");
  if (from.length !== 1) {
    throw new ApiError("InvalidFrom", "From must be exactly one email address.");
  }
  const to = parseAddresses("To", listText(params, "To"), "InvalidTo");
  const cc = optionalAddresses(params, "CC", "InvalidCc");
  const bcc = optionalAddresses(params, "BCC", "InvalidBcc");
  const recipients = to.length + cc.length + bcc.length;
  if (recipients > MAX_RECIPIENTS) {
    throw new ApiError(
      "TooManyRecipients",
      `A message may have at most ${MAX_RECIPIENTS} recipients in To, CC and BCC together; this one has ${recipients}. Split it into several messages.`,
    );
  }

  rejectLineBreaks("Subject", subject);
  const subjectLength = [...subject].length;
  if (subjectLength > MAX_SUBJECT_LENGTH) {
    throw new ApiError(
      "SubjectTooLong",
      `Subject is ${subjectLength} characters long; the maximum is ${MAX_SUBJECT_LENGTH}. Shorten it: Mailroom never truncates.`,
    );
  }
  if (BODY_UNSAFE.test(body)) {
    throw new ApiError(
      "InvalidBody",
      "Body contains a control character other than tab, line feed or carriage return; remove it.",
    );
  }

  return {
    from: from[0] as Mailbox,
    to,
    cc,
    bcc,
    subject,
    body,
    type: typeText === undefined ? DEFAULT_TYPE : normalizeType(typeText),
    statusCallback: optionalCallbackUrl(params),
  };
}

function isBlank(value: unknown): boolean {
  return typeof value === "string" && value.trim() === "";
}

/** A parameter that must be given once, as text. */
function singleText(params: Params, name: string): string {
  // Only called once the parameter is known to be present.
  return optionalText(params, name, "MalformedBody") ?? "";
}

/** To, CC and BCC may be repeated (form) or an array (JSON); each part may itself be a comma list. */
function listText(params: Params, name: string): string {
  const value = params[name];
  if (Array.isArray(value)) {
    if (!value.every((item) => typeof item === "string")) {
      throw new ApiError("MalformedBody", `${name} must be text or a list of text.`);
    }
    return value.join(", ");
  }
  return singleText(params, name);
}

function optionalAddresses(params: Params, name: string, kind: ErrorKind): Mailbox[] {
  const value = params[name];
  if (value === undefined || value === null || isBlank(value)) return [];
  return parseAddresses(name, listText(params, name), kind);
}

function parseAddresses(name: string, text: string, kind: ErrorKind): Mailbox[] {
  rejectLineBreaks(name, text);
  try {
    return parseAddressList(text);
  } catch (error) {
    if (error instanceof AddressListError) throw new ApiError(kind, `${name} is invalid: ${error.message}.`);
    throw error;
  }
}

// CR and LF end an SMTP header line; letting them through would let a caller add headers or recipients.
// Other control characters have no business in a header either.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const HEADER_UNSAFE = /[\u0000-\u0008\u000a-\u001f\u007f]/;

function rejectLineBreaks(name: string, value: string): void {
  if (HEADER_UNSAFE.test(value)) {
    throw new ApiError(
      "HeaderInjection",
      `${name} contains a line break or control character, which is not allowed in an email header.`,
    );
  }
}

// Neither email text nor the XML rendering can carry these; tab, LF and CR are fine in a body.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const BODY_UNSAFE = /[\u0000-\u0008\u000b\u000c\u000e-\u001f]/;

const SUPPORTED_TYPES = new Set(["text/plain", "text/html"]);

/** Accepts `text/plain` or `text/html` with an optional UTF-8 charset; Restcomm added the charset when missing. */
function normalizeType(type: string): string {
  rejectLineBreaks("Type", type);
  const [mediaType = "", ...parameters] = type.split(";").map((part) => part.trim());
  const media = mediaType.toLowerCase();
  if (!SUPPORTED_TYPES.has(media)) {
    throw new ApiError("InvalidType", `Type "${mediaType}" is not supported; use text/plain or text/html.`);
  }
  for (const parameter of parameters) {
    if (parameter === "") continue;
    const [key = "", value = ""] = parameter.split("=").map((part) => part.trim());
    const charset = value.replace(/^"|"$/g, "").toLowerCase();
    if (key.toLowerCase() !== "charset" || (charset !== "utf-8" && charset !== "utf8")) {
      throw new ApiError(
        "InvalidType",
        `Type parameter "${parameter}" is not supported; Mailroom sends UTF-8, so only charset=UTF-8 may be given.`,
      );
    }
  }
  return `${media}; charset=UTF-8`;
}

function optionalCallbackUrl(params: Params): string | null {
  const value = params.StatusCallback;
  if (value === undefined || value === null || isBlank(value)) return null;
  const text = singleText(params, "StatusCallback");
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ApiError("InvalidStatusCallback", `StatusCallback "${text}" is not a valid URL.`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new ApiError("InvalidStatusCallback", "StatusCallback must be an http:// or https:// URL.");
  }
  return url.toString();
}
