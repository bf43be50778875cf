import type { Mailbox } from "../domain/addresses.js";
import { flatListText, flatObjectText, jsonEscaped, jsonNullableString, listText } from "./json-text.js";

/**
 * What a message stores of its content, apart from the model's schemas (email-message.ts), so the
 * relay thread, which reads stored content to compose, does not load TypeBox and the send schemas
 * (about 3.6 MB of heap in that thread).
 */

/**
 * An attachment as a message refers to it: its bytes are stored once per distinct content (by
 * SHA-256) and fetched by `sha256` when the message is composed or downloaded.
 */
export interface AttachmentRef {
  /** As the caller named it; never used as a path. */
  filename: string;
  content_type: string;
  /** Decoded size in bytes. */
  size: number;
  /** Set for an inline part: the HTML refers to it as `cid:{content_id}`. */
  content_id: string | null;
  /** Lower-case hex SHA-256 of the bytes. */
  sha256: string;
}

/**
 * What a message says, as the caller gave it after validation: stored with the message (not
 * re-parsed on every attempt) and the only input of MIME composition besides the Message-ID, the
 * date and the attachment bytes.
 */
export interface EmailContent {
  from: Mailbox;
  to: Mailbox[];
  cc: Mailbox[];
  /** Envelope only: never written into a header. */
  bcc: Mailbox[];
  reply_to: Mailbox[];
  subject: string;
  /**
   * Restcomm's Body and Type: one part of that type (Type normalised, e.g. `text/plain; charset=UTF-8`).
   * Set only when the caller sent Body; then html and text are null (the API refuses both at once).
   */
  body: string | null;
  type: string | null;
  /**
   * The Html and Text parameters. Both: multipart/alternative, text first. Html alone: a text
   * alternative derived from it is added when composing (it is not stored).
   */
  html: string | null;
  text: string | null;
  /** Custom headers, names as given, in the order given; values are header-safe (no CR, LF or controls). */
  headers: Record<string, string>;
  tags: Record<string, string>;
  attachments: AttachmentRef[];
  /** The template the texts were rendered from (TemplateSid/TemplateName); absent in older messages. */
  template_sid?: string | null;
}

/**
 * How content is stored: the texts (body, html, text) in columns of their own, the rest as one JSON
 * document. The texts are most of a message's bytes; kept out of the JSON they cross to the store
 * and relay threads as plain strings, and JSON.stringify has no long text to escape (it was the
 * largest cost of accepting a plain message, docs/performance.md).
 */
export interface StoredContent {
  json: string;
  body: string | null;
  html: string | null;
  text: string | null;
}

export function storeContent(content: EmailContent): StoredContent {
  const { body, html, text } = content;
  return { json: contentJson(content), body, html, text };
}

/**
 * What JSON.stringify writes of the content with the texts as null (readStoredContent puts them back),
 * field by field in EmailContent's order (readEmailRequest's): no copy of the content, and only the
 * short strings (addresses, subject, type) are looked at for escapes.
 */
function contentJson(c: EmailContent): string {
  const json =
    `{"from":${mailboxJson(c.from)},"to":${listText(c.to, mailboxJson)},"cc":${listText(c.cc, mailboxJson)},` +
    `"bcc":${listText(c.bcc, mailboxJson)},"reply_to":${listText(c.reply_to, mailboxJson)},` +
    `"subject":"${jsonEscaped(c.subject)}","body":null,"type":${jsonNullableString(c.type)},"html":null,"text":null,` +
    `"headers":${flatObjectText(c.headers)},"tags":${flatObjectText(c.tags)},"attachments":${flatListText(c.attachments)}`;
  // Only a templated message has the key (JSON.stringify leaves an absent one out).
  return c.template_sid === undefined
    ? `${json}}`
    : `${json},"template_sid":${jsonNullableString(c.template_sid)}}`;
}

/** A mailbox as JSON.stringify writes the objects addresses.ts makes (bracketed, when set, last). */
function mailboxJson(m: Mailbox): string {
  const json = `{"name":"${jsonEscaped(m.name)}","address":"${jsonEscaped(m.address)}"`;
  return m.bracketed === undefined ? `${json}}` : `${json},"bracketed":${m.bracketed}}`;
}

/** The stored content of a message row. */
export function storedContentOf(row: {
  content: string;
  body_part: string | null;
  html_part: string | null;
  text_part: string | null;
}): StoredContent {
  return { json: row.content, body: row.body_part, html: row.html_part, text: row.text_part };
}

export function readStoredContent(stored: StoredContent): EmailContent {
  // The parsed object is new and ours: the texts are set on it rather than on a spread copy of it
  // (same keys in the same order: the JSON holds the three, as null, where the content has them).
  const content = JSON.parse(stored.json) as EmailContent;
  content.body = stored.body;
  content.html = stored.html;
  content.text = stored.text;
  return content;
}
