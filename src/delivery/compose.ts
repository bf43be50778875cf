import MailComposer from "nodemailer/lib/mail-composer";
import { parseAddressList } from "../domain/addresses.js";
import type { EmailMessageRow } from "../store/store.js";

/**
 * Builds the message's MIME from its stored row. Every header goes through nodemailer's encoder
 * (RFC 2047 for non-ASCII, quoting of display names), never through string concatenation here.
 * Bcc is deliberately absent: those recipients are only in the envelope. The output depends on the
 * row alone (Date is the acceptance time), and it is stored at the first attempt so that every
 * retry sends the very same bytes.
 */
export async function composeMime(message: EmailMessageRow): Promise<string> {
  const body = message.type.toLowerCase().startsWith("text/html")
    ? { html: message.body }
    : { text: message.body };
  const composer = new MailComposer({
    from: parseAddressList(message.from_address),
    to: parseAddressList(message.to_addresses),
    cc: message.cc_addresses ? parseAddressList(message.cc_addresses) : undefined,
    subject: message.subject,
    messageId: message.message_id,
    date: new Date(message.date_created),
    // SMTP and message/rfc822 both want CRLF; the body may have come with bare LFs.
    newline: "win",
    ...body,
  });
  const raw = await composer.compile().build();
  return raw.toString("utf8");
}
