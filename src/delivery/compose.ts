import type { EmailContent } from "../model/email-message.js";
import { composePlainMime } from "./compose-plain.js";

export { composePlainMime, hasLineLongerThan } from "./compose-plain.js";

/** Everything a message's MIME is made of: the same input always gives the same bytes. */
export interface ComposeInput {
  content: EmailContent;
  /** With angle brackets, e.g. `<EM…@example.org>`. */
  messageId: string;
  /** Acceptance time, epoch ms: the Date header. */
  date: number;
  /** Attachment bytes by AttachmentRef.sha256 (every attachment of content must be present, else throw). */
  attachments: ReadonlyMap<string, Uint8Array>;
}

/**
 * The message's MIME, as one ASCII string of CRLF lines. One part (Body, or Text alone, without
 * attachments: nearly every message) is written synchronously by compose-plain.ts, the hot path;
 * any other shape goes through MailComposer (compose-rich.ts). Both write the same message headers
 * (compose-headers.ts). A message that could not be composed safely is refused (the promise
 * rejects), never sent half-encoded.
 */
export async function composeMime(input: ComposeInput): Promise<string> {
  const plain = composePlainMime(input);
  if (plain !== null) return plain;
  // Loaded at the first message that needs it: MailComposer and html-to-text add about 15 MB to a
  // process, which one sending only plain mail need not carry.
  rich ??= import("./compose-rich.js");
  return (await rich).composeRichMime(input);
}

let rich: Promise<typeof import("./compose-rich.js")> | undefined;
