import type { Mailbox } from "./addresses.js";

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
 * What a message says, as the caller gave it after validation: stored with the message (one JSON
 * document, not re-parsed on every attempt) and the only input of MIME composition besides the
 * Message-ID, the date and the attachment bytes.
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
}
