import { formatMailboxList } from "../domain/addresses.js";
import { type AttachmentPolicy, checkAttachments } from "../domain/attachments.js";
import { newSid } from "../domain/ids.js";
import type { MailroomMetrics } from "../metrics/metrics.js";
import {
  type EmailContent,
  type EmailMessageSource,
  storeContent,
  type ValidatedEmail,
} from "../model/email-message.js";
import type { EmailMessageRow, Lease, MailStore } from "../store/types.js";
import { type AddressGuardOptions, checkUrlHost } from "../webhooks/address-guard.js";

/** A message for the delivery worker: its row, and what the accepting process already has in memory. */
export interface DeliveryJob {
  message: EmailMessageRow;
  /** The row's content, read (else read from the row: readStoredContent). */
  content?: EmailContent;
  /** Attachment bytes by SHA-256 (else read from the store when composing). */
  attachments?: ReadonlyMap<string, Uint8Array>;
}

/** Where accepted mail goes next: the delivery worker of this process (see DeliveryWorker). */
export interface AcceptedMailSink {
  /** A lease when the worker can deliver the message at once, else null (it then waits in the queue). */
  reserve(): Lease | null;
  /** The leased message is committed: deliver it. */
  handOff(job: DeliveryJob): void;
  /** The leased message could not be stored. */
  cancel(): void;
  /** An unleased message was queued: look at the queue. */
  wake(): void;
}

/**
 * Accepting a message: check its attachments, give it a SID and a Message-ID that every delivery
 * attempt reuses, and store it with its queue entry. The caller hears back only once that is committed.
 */
export class EmailMessageService {
  constructor(
    private readonly store: MailStore,
    private readonly delivery: AcceptedMailSink,
    private readonly attachmentPolicy: AttachmentPolicy,
    private readonly events: {
      /** How a StatusCallback URL is checked (MAILROOM_WEBHOOK_ALLOW_PRIVATE); unchecked when absent. */
      callbackGuard?: AddressGuardOptions;
      /** Counts accepted messages (/metrics). */
      metrics?: Pick<MailroomMetrics, "messageAccepted">;
    } = {},
  ) {}

  async accept(accountSid: string, email: ValidatedEmail): Promise<EmailMessageSource> {
    // Where the callback will be POSTed must be allowed now (and is checked again at each POST); a
    // lookup that fails only for now does not refuse the message.
    const { callbackGuard } = this.events;
    if (email.statusCallback !== null && callbackGuard) {
      await checkUrlHost(new URL(email.statusCallback), callbackGuard, "StatusCallback", true);
    }
    const attachments =
      email.uploads.length > 0 ? await checkAttachments(email.uploads, this.attachmentPolicy) : [];
    const content: EmailContent =
      attachments.length === 0
        ? email.content
        : { ...email.content, attachments: attachments.map((a) => a.ref) };
    const now = Date.now();
    const sid = newSid("EM");
    const fromDomain = content.from.address.slice(content.from.address.lastIndexOf("@") + 1);
    const stored = storeContent(content);
    const message: EmailMessageRow = {
      sid,
      account_sid: accountSid,
      from_address: formatMailboxList([content.from]),
      to_addresses: formatMailboxList(content.to),
      subject: content.subject,
      content: stored.json,
      body_part: stored.body,
      html_part: stored.html,
      text_part: stored.text,
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
      content_purged_at: null,
    };
    const tags = Object.entries(content.tags).map(([name, value]) => ({
      message_sid: sid,
      account_sid: accountSid,
      name,
      value,
    }));
    const blobs = attachments.map((a) => ({ sha256: a.ref.sha256, size: a.ref.size, content: a.content }));
    const lease = this.delivery.reserve();
    try {
      // Most messages have neither: nothing extra to send to the store thread.
      const extras = tags.length > 0 || blobs.length > 0 ? { tags, blobs } : undefined;
      await this.store.acceptEmail(message, lease, extras);
    } catch (error) {
      if (lease) this.delivery.cancel();
      throw error;
    }
    this.events.metrics?.messageAccepted();
    if (lease) {
      const bytes =
        attachments.length === 0
          ? undefined
          : new Map(attachments.map((a) => [a.ref.sha256, a.content as Uint8Array]));
      this.delivery.handOff({ message, content, attachments: bytes });
    } else this.delivery.wake();
    // The answer shows the message as accepted (queued), even when its delivery has just begun.
    return { ...message, content, next_attempt_at: now };
  }
}
