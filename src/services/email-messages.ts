import { formatMailbox, formatMailboxList } from "../domain/addresses.js";
import { validateEmailRequest } from "../domain/email-request.js";
import { newSid } from "../domain/ids.js";
import type { EmailMessageRow, EmailMessageView, Lease, MailStore } from "../store/store.js";

/** Where accepted mail goes next: the delivery worker of this process (see DeliveryWorker). */
export interface AcceptedMailSink {
  /** A lease when the worker can deliver the message at once, else null (it then waits in the queue). */
  reserve(): Lease | null;
  /** The leased message is committed: deliver it. */
  handOff(message: EmailMessageRow): void;
  /** The leased message could not be stored. */
  cancel(): void;
  /** An unleased message was queued: look at the queue. */
  wake(): void;
}

/**
 * Accepting a message: validate, give it a SID and a Message-ID that every delivery attempt reuses,
 * and store it with its queue entry. The caller hears back only once that is committed.
 */
export class EmailMessageService {
  constructor(
    private readonly store: MailStore,
    private readonly delivery: AcceptedMailSink,
  ) {}

  async accept(accountSid: string, params: Record<string, unknown>): Promise<EmailMessageView> {
    const email = validateEmailRequest(params);
    const now = Date.now();
    const sid = newSid("EM");
    const fromDomain = email.from.address.slice(email.from.address.lastIndexOf("@") + 1);
    const row: EmailMessageRow = {
      sid,
      account_sid: accountSid,
      from_address: formatMailbox(email.from),
      to_addresses: formatMailboxList(email.to),
      cc_addresses: formatMailboxList(email.cc),
      bcc_addresses: formatMailboxList(email.bcc),
      subject: email.subject,
      body: email.body,
      type: email.type,
      status: "queued",
      message_id: `<${sid}@${fromDomain}>`,
      status_callback: email.statusCallback,
      error_code: null,
      error_message: null,
      num_attempts: 0,
      date_created: now,
      date_updated: now,
      date_sent: now,
      date_delivered: null,
    };
    const lease = this.delivery.reserve();
    try {
      await this.store.acceptEmail(row, lease);
    } catch (error) {
      if (lease) this.delivery.cancel();
      throw error;
    }
    if (lease) this.delivery.handOff(row);
    else this.delivery.wake();
    // The answer shows the message as accepted (queued), even when its delivery has just begun.
    return { ...row, next_attempt_at: now };
  }
}
