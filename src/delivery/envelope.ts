import { parseAddressList } from "../domain/addresses.js";
import type { EmailMessageRow } from "../store/store.js";
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
export function envelopeFor(message: EmailMessageRow, settled: readonly RecipientOutcome[]): Envelope {
  const skip = new Set(settled.map((recipient) => recipient.address.toLowerCase()));
  const to: string[] = [];
  for (const list of [message.to_addresses, message.cc_addresses, message.bcc_addresses]) {
    if (!list) continue;
    for (const { address } of parseAddressList(list)) {
      const key = address.toLowerCase();
      if (skip.has(key)) continue;
      skip.add(key);
      to.push(address);
    }
  }
  const [sender] = parseAddressList(message.from_address);
  return { from: sender?.address ?? "", to };
}
