import Type, { type Static } from "typebox";
import {
  AddressListError,
  formatMailboxList,
  type Mailbox,
  parseAddressList,
  TooManyAddressesError,
} from "../domain/addresses.js";
import { ApiError, type ErrorKind } from "../domain/errors.js";
import {
  checkCustomHeaders,
  codePoint,
  containsControl,
  NON_CHARACTER,
  rejectLineBreaks,
  rejectUnsafeCharacters,
} from "../domain/header-rules.js";
import { MESSAGE_STATUSES } from "../domain/message-status.js";
import { quoteInput } from "../domain/quote.js";
import { parseSendAt } from "../domain/send-at.js";
import { iso8601, rfc2822 } from "../http/dates.js";
import { TemplateDataParam, TemplateStrictParam } from "./email-template.js";
import { API_VERSION, emailMessagesPath } from "./paths.js";
import { field, NamedValues, ResourceModel, type Scalar, Schemas } from "./resource.js";
import type { AttachmentRef, EmailContent } from "./stored-content.js";

/**
 * The email message, declared once: the parameters a send accepts (request schema), what is
 * stored (EmailContent, one JSON document beside the columns lists filter on), and the fields GET
 * shows (the resource model). Adding an optional field means: a parameter below, a line in
 * `readEmailRequest`, a member of EmailContent, an output field, then composing it
 * (src/delivery/compose*.ts) and a line in docs/api.md.
 */

// ---------------------------------------------------------------- what is stored (stored-content.ts)

export {
  type AttachmentRef,
  type EmailContent,
  readStoredContent,
  type StoredContent,
  storeContent,
  storedContentOf,
} from "./stored-content.js";

// ---------------------------------------------------------------- the request

/** Restcomm documents a 160 character subject; Restcomm truncated, Mailroom refuses instead. */
export const MAX_SUBJECT_LENGTH = 160;
/** Most relays refuse more than 100 RCPT TO in one transaction. */
export const MAX_RECIPIENTS = 100;
/**
 * The longest text one list of addresses (To, CC, BCC, ReplyTo) may be: room for 100 mailboxes with
 * long display names (an address is at most 254 octets, a name 256 characters). Checked before the
 * list is read, so a 10 MB To costs nothing.
 */
export const MAX_ADDRESS_LIST_LENGTH = MAX_RECIPIENTS * 1000;
/** No RFC bounds a display name; a longer one is not a name, and it is shown and sent in every header. */
export const MAX_DISPLAY_NAME_LENGTH = 256;
const MAX_TYPE_LENGTH = 200;
export const MAX_TAGS = 10;
export const MAX_HEADERS = 50;
export const MAX_ATTACHMENTS = 100;
export const DEFAULT_TYPE = "text/plain; charset=UTF-8";

const addressList = (description: string) =>
  Type.Union([Type.String(), Type.Array(Type.String())], {
    description: `${description} One or more addresses: a comma-separated list, or the parameter repeated (a JSON array).`,
  });

export const AttachmentParam = Type.Object(
  {
    Filename: Type.String({
      description: "The file name shown to the recipient.",
      minLength: 1,
      maxLength: 255,
    }),
    Content: Type.String({ description: "The bytes, base64-encoded.", contentEncoding: "base64" }),
    ContentType: Type.Optional(
      Type.String({
        description: "MIME type; default application/octet-stream.",
        maxLength: 255,
      }),
    ),
    ContentId: Type.Optional(
      Type.String({
        description: "Makes the attachment an inline part the HTML refers to as cid:{ContentId}.",
        minLength: 1,
        maxLength: 255,
      }),
    ),
  },
  { additionalProperties: false },
);

/**
 * The parameters of `POST …/Email/Messages`, the same in form, JSON and multipart bodies. In form
 * and multipart bodies, Headers and Tags hold a JSON object as text, and attachments are file parts
 * named `Attachment` (in JSON, the Attachments array).
 */
export const SendEmailParams = Type.Object(
  {
    From: Type.String({ description: "The sender: one address, optionally with a display name." }),
    To: addressList("Recipients."),
    Subject: Type.Optional(
      Type.String({
        description: `At most ${MAX_SUBJECT_LENGTH} characters; never truncated. Required unless a template gives it.`,
      }),
    ),
    Body: Type.Optional(
      Type.String({
        description:
          "Restcomm's body: one part of the given Type. Required unless Html, Text or a template is given.",
      }),
    ),
    Type: Type.Optional(
      Type.String({ description: "text/plain (default) or text/html, optionally with charset=UTF-8." }),
    ),
    CC: Type.Optional(addressList("Carbon-copy recipients.")),
    BCC: Type.Optional(addressList("Blind carbon-copy recipients (envelope only).")),
    StatusCallback: Type.Optional(
      Type.String({ description: "http(s) URL POSTed to when the message is sent or failed." }),
    ),
    Html: Type.Optional(Type.String({ description: "The HTML part." })),
    Text: Type.Optional(
      Type.String({ description: "The plain-text part (first in multipart/alternative)." }),
    ),
    ReplyTo: Type.Optional(addressList("Reply-To addresses.")),
    Headers: Type.Optional(
      Type.Record(Type.String(), Type.String(), {
        description:
          "Custom headers as a JSON object of name → value. Names Mailroom writes itself (From, To, Cc, Bcc, Reply-To, Subject, Message-ID, Date, MIME-Version, Content-*, DKIM-Signature, …) are refused.",
        maxProperties: MAX_HEADERS,
      }),
    ),
    Tags: Type.Optional(
      Type.Record(Type.String(), Type.String(), {
        description: `Up to ${MAX_TAGS} name → value pairs (a JSON object), filterable with Tag=name:value. Names: 1–64 of A-Z a-z 0-9 _ . -; values: up to 256 characters.`,
        maxProperties: MAX_TAGS,
      }),
    ),
    Attachments: Type.Optional(
      Type.Array(AttachmentParam, {
        description: "Files to attach (JSON bodies).",
        maxItems: MAX_ATTACHMENTS,
      }),
    ),
    TemplateSid: Type.Optional(
      Type.String({ description: "Render the message from this template (ET…): see docs/api.md#templates." }),
    ),
    TemplateName: Type.Optional(
      Type.String({
        description: "Render the message from the template of this name (instead of TemplateSid).",
      }),
    ),
    TemplateData: Type.Optional(TemplateDataParam),
    TemplateStrict: Type.Optional(TemplateStrictParam),
    SendAt: Type.Optional(
      Type.String({
        description:
          "Schedules the message: an ISO 8601 date-time with an offset (Z or ±hh:mm), at most 30 days ahead. The message is `scheduled` until then and delivered as usual from then on.",
        examples: ["2026-05-01T09:30:00Z"],
      }),
    ),
  },
  { additionalProperties: false },
);
export type SendEmailParams = Static<typeof SendEmailParams>;

/** An attachment's bytes as received (multipart file part or decoded JSON item). */
export interface AttachmentUpload {
  filename: string;
  contentType: string;
  contentId: string | null;
  content: Buffer;
}

/** A send request that passed every check: the content to store and the attachment bytes. */
export interface ValidatedEmail {
  content: EmailContent;
  statusCallback: string | null;
  /** SendAt (ms since the epoch): the message is scheduled for then; null: deliver at once. */
  sendAt: number | null;
  /** In the order of content.attachments. */
  uploads: AttachmentUpload[];
}

/**
 * Checks a send request whose shape the schema already checked, and turns it into the content to
 * store. Throws ApiError with the first problem found; nothing is trimmed away or shortened silently.
 * `files` are the multipart file parts, in order.
 */
export function readEmailRequest(params: SendEmailParams, files: AttachmentUpload[] = []): ValidatedEmail {
  // Optional in the schema because a template may give it (applyTemplate runs before this).
  if (params.Subject === undefined) throw new ApiError("SubjectMissing", "Subject can not be null.");
  const hasParts = params.Html !== undefined || params.Text !== undefined;
  if (params.Body !== undefined && hasParts) {
    throw new ApiError(
      "ConflictingBody",
      "Send either Body (with Type) or Html and/or Text, not both: put the plain text in Text.",
    );
  }
  if (params.Type !== undefined && hasParts) {
    throw new ApiError(
      "ConflictingBody",
      "Type describes Body; with Html and Text there is nothing for it to say.",
    );
  }
  const from = parseAddresses("From", params.From, "InvalidFrom", 1);
  // To, CC and BCC share one budget of recipients: reading stops at the first one too many.
  const to = parseAddresses("To", listText(params.To), "InvalidTo", MAX_RECIPIENTS);
  const cc = optionalAddresses("CC", params.CC, "InvalidCc", MAX_RECIPIENTS - to.length);
  const bcc = optionalAddresses("BCC", params.BCC, "InvalidBcc", MAX_RECIPIENTS - to.length - cc.length);
  const replyTo = optionalAddresses("ReplyTo", params.ReplyTo, "InvalidReplyTo", MAX_RECIPIENTS);
  checkSubject(params.Subject);
  for (const name of ["Body", "Html", "Text"] as const) checkBodyText(name, params[name]);
  const uploads =
    params.Attachments === undefined ? files : [...params.Attachments.map(decodeAttachment), ...files];
  return {
    content: {
      from: from[0] as Mailbox,
      to,
      cc,
      bcc,
      reply_to: replyTo,
      subject: params.Subject,
      body: params.Body ?? null,
      type:
        params.Body === undefined
          ? null
          : params.Type === undefined
            ? DEFAULT_TYPE
            : normalizeType(params.Type),
      html: params.Html ?? null,
      text: params.Text ?? null,
      headers: params.Headers === undefined ? {} : checkCustomHeaders(params.Headers),
      tags: params.Tags === undefined ? {} : checkTags(params.Tags),
      // Filled in by the service once the bytes are checked and hashed (see attachments.ts).
      attachments: [],
    },
    statusCallback: optionalCallbackUrl(params.StatusCallback),
    // Empty is absent, as for StatusCallback (form clients send every field they know).
    sendAt:
      params.SendAt === undefined || params.SendAt === "" ? null : parseSendAt(params.SendAt, Date.now()),
    uploads,
  };
}

function listText(value: string | string[]): string {
  return Array.isArray(value) ? value.join(", ") : value;
}

function optionalAddresses(
  name: string,
  value: string | string[] | undefined,
  kind: ErrorKind,
  maxMailboxes: number,
): Mailbox[] {
  if (value === undefined) return [];
  const text = listText(value);
  if (text.trim() === "") return [];
  return parseAddresses(name, text, kind, maxMailboxes);
}

/** Reads one list of addresses; `maxMailboxes` is what is left of its budget (From: 1; recipients: 100 in all). */
function parseAddresses(name: string, text: string, kind: ErrorKind, maxMailboxes: number): Mailbox[] {
  if (text.length > MAX_ADDRESS_LIST_LENGTH) {
    throw new ApiError(
      kind,
      `${name} is ${text.length} characters long; a list of at most ${MAX_RECIPIENTS} addresses needs no more than ${MAX_ADDRESS_LIST_LENGTH}.`,
    );
  }
  rejectLineBreaks(name, text);
  try {
    const mailboxes = parseAddressList(text, maxMailboxes);
    for (const mailbox of mailboxes) {
      if (mailbox.name.length > MAX_DISPLAY_NAME_LENGTH) {
        throw new ApiError(
          kind,
          `${name} is invalid: the display name of <${mailbox.address}> is ${mailbox.name.length} characters long; the maximum is ${MAX_DISPLAY_NAME_LENGTH}.`,
        );
      }
    }
    return mailboxes;
  } catch (error) {
    if (error instanceof TooManyAddressesError) throw tooManyAddresses(name, kind);
    if (error instanceof AddressListError) throw new ApiError(kind, `${name} is invalid: ${error.message}.`);
    throw error;
  }
}

function tooManyAddresses(name: string, kind: ErrorKind): ApiError {
  if (kind === "InvalidFrom") return new ApiError(kind, "From must be exactly one email address.");
  if (kind === "InvalidReplyTo") {
    return new ApiError(kind, `ReplyTo may hold at most ${MAX_RECIPIENTS} addresses.`);
  }
  return new ApiError(
    "TooManyRecipients",
    `A message may have at most ${MAX_RECIPIENTS} recipients in To, CC and BCC together; ${name} goes past that. Split it into several messages.`,
  );
}

/**
 * How long a Subject over the limit is, in words for the error; undefined when within it. A character
 * is one or two UTF-16 units: at most 160 units are at most 160 characters and over 640 units over 320,
 * neither counted (counting spreads the subject into an array).
 */
function subjectLengthOver(subject: string): string | undefined {
  if (subject.length <= MAX_SUBJECT_LENGTH) return undefined;
  if (subject.length > 4 * MAX_SUBJECT_LENGTH) return `over ${2 * MAX_SUBJECT_LENGTH}`;
  const characters = [...subject].length;
  return characters > MAX_SUBJECT_LENGTH ? String(characters) : undefined;
}

/** The length first (a 10 MB Subject is never scanned), then what a header cannot carry. */
function checkSubject(subject: string): void {
  const tooLong = subjectLengthOver(subject);
  if (tooLong !== undefined) {
    throw new ApiError(
      "SubjectTooLong",
      `Subject is ${tooLong} characters long; the maximum is ${MAX_SUBJECT_LENGTH}. Shorten it: Mailroom never truncates.`,
    );
  }
  rejectLineBreaks("Subject", subject);
}

// Neither email text nor the XML rendering can carry controls other than tab, LF and CR (fine in a
// body), nor non-characters: one expression finds both in one pass over what may be megabytes.
const BODY_UNSAFE = new RegExp(`[\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f]|${NON_CHARACTER.source}`);

function checkBodyText(name: string, value: string | undefined): void {
  if (value === undefined) return;
  const found = BODY_UNSAFE.exec(value)?.[0];
  if (found !== undefined && found.charCodeAt(0) < 0x20) {
    throw new ApiError(
      "InvalidBody",
      `${name} contains a control character (${codePoint(found)}) other than tab, line feed or carriage return; remove it.`,
    );
  }
  // A non-character, or (found by isWellFormed, at no cost for text kept one byte a character) an unpaired surrogate.
  rejectUnsafeCharacters(name, value);
}

const SUPPORTED_TYPES = new Set(["text/plain", "text/html"]);

/** Accepts `text/plain` or `text/html` with an optional UTF-8 charset; Restcomm added the charset when missing. */
function normalizeType(type: string): string {
  if (type.length > MAX_TYPE_LENGTH) {
    throw new ApiError("InvalidType", `Type is ${type.length} characters long; use text/plain or text/html.`);
  }
  rejectLineBreaks("Type", type);
  const [mediaType = "", ...parameters] = type.split(";").map((part) => part.trim());
  const media = mediaType.toLowerCase();
  if (!SUPPORTED_TYPES.has(media)) {
    throw new ApiError(
      "InvalidType",
      `Type ${quoteInput(mediaType)} is not supported; use text/plain or text/html.`,
    );
  }
  for (const parameter of parameters) {
    if (parameter === "") continue;
    const [key = "", value = ""] = parameter.split("=").map((part) => part.trim());
    const charset = value.replace(/^"|"$/g, "").toLowerCase();
    if (key.toLowerCase() !== "charset" || (charset !== "utf-8" && charset !== "utf8")) {
      throw new ApiError(
        "InvalidType",
        `Type parameter ${quoteInput(parameter)} is not supported; Mailroom sends UTF-8, so only charset=UTF-8 may be given.`,
      );
    }
  }
  return `${media}; charset=UTF-8`;
}

// The URL parser would silently drop tabs and line breaks anywhere, and controls and spaces at either
// end, and read a backslash as a slash: `…/cb\r\nx` would become `…/cbx`. Refused instead.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const URL_UNSAFE = /[\u0000-\u001f\u007f-\u009f\\]|^\s|\s$/;

function optionalCallbackUrl(value: string | undefined): string | null {
  if (value === undefined || value.trim() === "") return null;
  const unsafe = URL_UNSAFE.exec(value)?.[0];
  if (unsafe !== undefined) {
    const code = unsafe.charCodeAt(0);
    const what =
      code < 0x20 || (code >= 0x7f && code <= 0x9f)
        ? `the control character ${codePoint(unsafe)}`
        : unsafe === "\\"
          ? "a backslash"
          : "spaces around it";
    throw new ApiError(
      "InvalidStatusCallback",
      `StatusCallback contains ${what}, which a URL cannot carry as it is; percent-encode it (or remove it).`,
    );
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ApiError("InvalidStatusCallback", `StatusCallback ${quoteInput(value)} is not a valid URL.`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new ApiError("InvalidStatusCallback", "StatusCallback must be an http:// or https:// URL.");
  }
  return url.toString();
}

const TAG_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

function checkTags(tags: Record<string, string>): Record<string, string> {
  for (const [name, value] of Object.entries(tags)) {
    if (!TAG_NAME.test(name)) {
      throw new ApiError(
        "InvalidTag",
        `Tag name ${quoteInput(name)} is not allowed: use 1 to 64 letters, digits, underscores, dots or hyphens.`,
      );
    }
    if (value.length > 512 || [...value].length > 256 || containsControl(value)) {
      throw new ApiError(
        "InvalidTag",
        `Tag "${name}" has a value longer than 256 characters or with a control character.`,
      );
    }
    rejectUnsafeCharacters(`Tag "${name}"`, value);
  }
  return { ...tags };
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** A JSON attachment's base64, decoded strictly: anything that is not base64 is refused, not skipped. */
function decodeAttachment(item: Static<typeof AttachmentParam>, index: number): AttachmentUpload {
  const compact = item.Content.replace(/[\r\n]/g, "");
  if (compact.length % 4 !== 0 || !BASE64.test(compact)) {
    throw new ApiError(
      "InvalidAttachment",
      `Attachments[${index}].Content is not valid base64 (standard alphabet, padded with =).`,
    );
  }
  return {
    filename: item.Filename,
    contentType: item.ContentType ?? "application/octet-stream",
    contentId: item.ContentId ?? null,
    content: Buffer.from(compact, "base64"),
  };
}

// ---------------------------------------------------------------- what GET shows

/** A stored message as the API shows it: its columns, its content and its queue state. */
export interface EmailMessageSource {
  sid: string;
  account_sid: string;
  /** From and To as text (also in content): what lists filter on, shown as they are. */
  from_address: string;
  to_addresses: string;
  content: EmailContent;
  status: string;
  message_id: string;
  status_callback: string | null;
  error_code: number | null;
  error_message: string | null;
  num_attempts: number;
  date_created: number;
  date_updated: number;
  date_sent: number;
  date_delivered: number | null;
  next_attempt_at: number | null;
  send_at: number | null;
  /** When retention or an erasure purged its content (issue 16); null while it has it. */
  content_purged_at: number | null;
}

/** The columns of a message row the API shows (a stored row, or the one a send has just built). */
export type EmailMessageColumns = Omit<EmailMessageSource, "content" | "next_attempt_at">;

/**
 * A message as the API shows it, from its row and its content, field by field: every send's answer and
 * every message of a list is one. A spread of the row (with a rest pattern leaving out the stored
 * content) copied it key by key and gave send and GET sources shapes of their own: about 15,000
 * instructions a message against 1,000 (callgrind, a micro benchmark of a plain send's row).
 */
export function messageSource(
  row: EmailMessageColumns,
  content: EmailContent,
  nextAttemptAt: number | null,
  status: string = row.status,
): EmailMessageSource {
  return {
    sid: row.sid,
    account_sid: row.account_sid,
    from_address: row.from_address,
    to_addresses: row.to_addresses,
    content,
    status,
    message_id: row.message_id,
    status_callback: row.status_callback,
    error_code: row.error_code,
    error_message: row.error_message,
    num_attempts: row.num_attempts,
    date_created: row.date_created,
    date_updated: row.date_updated,
    date_sent: row.date_sent,
    date_delivered: row.date_delivered,
    next_attempt_at: nextAttemptAt,
    send_at: row.send_at,
    content_purged_at: row.content_purged_at,
  };
}

const listOrNull = (mailboxes: readonly Mailbox[]) =>
  mailboxes.length > 0 ? formatMailboxList(mailboxes) : null;
const objectOrNull = (entries: Record<string, string>) =>
  Object.keys(entries).length > 0 ? new NamedValues(entries) : null;

const AttachmentOutput = Type.Object({
  filename: Type.String(),
  content_type: Type.String(),
  size: Type.Integer(),
  content_id: Type.Optional(Type.String()),
  sha256: Type.String(),
});

/** Restcomm's fields first, in Restcomm's order; Mailroom's additions after them. */
export const EmailMessageModel = new ResourceModel<EmailMessageSource>(
  "EmailMessage",
  [
    field("date_sent", Schemas.iso8601, "When the message was accepted (ISO 8601).", (m) =>
      iso8601(m.date_sent),
    ),
    field("account_sid", Schemas.text, "The account that sent it.", (m) => m.account_sid),
    field("from", Schemas.text, "The sender.", (m) => m.from_address),
    field("to", Schemas.text, "Recipients, comma-separated.", (m) => m.to_addresses),
    field("body", Schemas.text, "Restcomm's Body, when it was given.", (m) => m.content.body),
    field("subject", Schemas.text, "The subject.", (m) => m.content.subject),
    field("sid", Schemas.text, "EM + 32 hex digits.", (m) => m.sid),
    field(
      "status",
      Type.Union(MESSAGE_STATUSES.map((s) => Type.Literal(s))),
      "Delivery status.",
      (m) => m.status,
    ),
    field("cc", Schemas.text, "Carbon-copy recipients.", (m) => listOrNull(m.content.cc)),
    field("bcc", Schemas.text, "Blind carbon-copy recipients.", (m) => listOrNull(m.content.bcc)),
    field("type", Schemas.text, "Body's content type.", (m) => m.content.type),
    field(
      "message_id",
      Schemas.text,
      "The Message-ID header, the same on every attempt.",
      (m) => m.message_id,
    ),
    field("num_attempts", Schemas.integer, "Delivery attempts so far.", (m) => m.num_attempts),
    field(
      "error_code",
      Schemas.integer,
      "Why delivery failed or is being retried (docs/delivery.md).",
      (m) => m.error_code,
    ),
    field("error_message", Schemas.text, "The error in words, quoting the relay.", (m) => m.error_message),
    field("status_callback", Schemas.text, "The StatusCallback URL.", (m) => m.status_callback),
    field("date_created", Schemas.rfc2822, "When it was accepted.", (m) => rfc2822(m.date_created)),
    field("date_updated", Schemas.rfc2822, "When its state last changed.", (m) => rfc2822(m.date_updated)),
    field("date_delivered", Schemas.rfc2822, "When the relay took it.", (m) =>
      m.date_delivered === null ? null : rfc2822(m.date_delivered),
    ),
    field(
      "next_attempt",
      Schemas.rfc2822,
      "When the next attempt is due (while queued or scheduled).",
      (m) =>
        (m.status === "queued" || m.status === "scheduled") && m.next_attempt_at !== null
          ? rfc2822(m.next_attempt_at)
          : null,
    ),
    field("api_version", Schemas.text, "Always 2012-04-24.", () => API_VERSION),
    field("uri", Schemas.text, "This resource.", (m) => `${messagePath(m)}.json`),
    field(
      "subresource_uris",
      Type.Object({ attempts: Type.String(), mime: Type.String() }),
      "The message's attempts and its composed MIME.",
      (m) => {
        const path = messagePath(m);
        return { attempts: `${path}/Attempts.json`, mime: `${path}/Mime` };
      },
    ),
    field("html", Schemas.text, "The HTML part (Html).", (m) => m.content.html),
    field("text", Schemas.text, "The text part (Text).", (m) => m.content.text),
    field("reply_to", Schemas.text, "Reply-To addresses.", (m) => listOrNull(m.content.reply_to)),
    field("headers", Schemas.namedValues, "Custom headers.", (m) => objectOrNull(m.content.headers)),
    field("tags", Schemas.namedValues, "Tags.", (m) => objectOrNull(m.content.tags)),
    field(
      "attachments",
      Type.Array(AttachmentOutput),
      "Attachments; the bytes of the n-th (from 0) are at …/Email/Messages/{Sid}/Attachments/{n}.",
      (m) => (m.content.attachments.length > 0 ? m.content.attachments.map(attachmentOutput) : null),
    ),
    field(
      "template_sid",
      Schemas.text,
      "The template it was rendered from (TemplateSid or TemplateName).",
      (m) => m.content.template_sid ?? null,
    ),
    field(
      "send_at",
      Schemas.iso8601,
      "SendAt: when a scheduled message is (or was) due (ISO 8601); absent when it was sent at once.",
      (m) => (m.send_at === null ? null : iso8601(m.send_at)),
    ),
    field(
      "content_purged",
      Schemas.boolean,
      "True once its content (texts, MIME, attachments, custom headers) was purged: retention or erasure.",
      (m) => m.content_purged_at !== null,
    ),
  ],
  "An email message.",
);

/** An attachment's fields in order; content_id only when it has one (JSON never carries null). */
function attachmentOutput(a: AttachmentRef): Record<string, Scalar> {
  const { filename, content_type, size, content_id, sha256 } = a;
  return content_id === null
    ? { filename, content_type, size, sha256 }
    : { filename, content_type, size, content_id, sha256 };
}

function messagePath(m: EmailMessageSource): string {
  return `${emailMessagesPath(m.account_sid)}/${m.sid}`;
}
