import type { EmailContent } from "../model/email-message.js";
import type { RecipientOutcome } from "./transports/transport.js";

export interface Envelope {
  from: string;
  to: string[];
}

/**
 * The SMTP envelope of one attempt: MAIL FROM is the From address; RCPT TO is every To, CC and BCC
 * address once, except the recipients an earlier attempt settled, so a retry after a partial
 * deferral does not send a second copy to those who already have one.
 */
export function envelopeFor(content: EmailContent, settled: readonly RecipientOutcome[]): Envelope {
  const skip = new Set(settled.map((recipient) => recipient.address.toLowerCase()));
  const to: string[] = [];
  for (const list of [content.to, content.cc, content.bcc]) {
    for (const { address } of list) {
      const key = address.toLowerCase();
      if (skip.has(key)) continue;
      skip.add(key);
      to.push(address);
    }
  }
  return { from: content.from.address, to };
}
