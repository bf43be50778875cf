import { formatMailboxList } from "../domain/addresses.js";
import { type AttachmentPolicy, checkAttachments } from "../domain/attachments.js";
import { newSid } from "../domain/ids.js";
import type { FromPolicy } from "../domains/sending-policy.js";
import type { MailroomMetrics } from "../metrics/metrics.js";
import {
  type EmailContent,
  type EmailMessageSource,
  messageSource,
  storeContent,
  type ValidatedEmail,
} from "../model/email-message.js";
import type { EmailMessageRow, IdempotentAnswer, Lease, MailStore, MessageExtras } from "../store/types.js";
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
  /** An unleased message was queued (due at `dueAt` when that is later than now): look at the queue. */
  wake(dueAt?: number): void;
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
      /** MAILROOM_REQUIRE_VERIFIED_DOMAIN (src/domains/sending-policy.ts); absent: any From. */
      fromPolicy?: FromPolicy;
    } = {},
  ) {}

  async accept(accountSid: string, email: ValidatedEmail): Promise<EmailMessageSource> {
    const ready = this.prepare(accountSid, email);
    // Most sends need nothing awaited before storing: no promise, no turn of the microtask queue.
    const prepared = ready instanceof Promise ? await ready : ready;
    const lease = this.leaseFor(prepared.message);
    try {
      // Most messages have neither: nothing extra to send to the store thread.
      const { tags, blobs } = prepared.extras;
      await this.store.acceptEmail(
        prepared.message,
        lease,
        tags.length > 0 || blobs.length > 0 ? prepared.extras : undefined,
      );
    } catch (error) {
      if (lease) this.delivery.cancel();
      throw error;
    }
    // One message: what delivered() does for a batch, without building one.
    const { message, content, attachments } = prepared;
    this.events.metrics?.messageAccepted();
    if (lease) this.delivery.handOff({ message, content, attachments });
    else this.delivery.wake(message.send_at ?? undefined);
    return prepared.source;
  }

  /**
   * Everything a send does before storing: the StatusCallback's host and the attachments checked, a
   * SID and a Message-ID given. Throws ApiError for what the client must fix. A batch runs it per item.
   */
  prepare(accountSid: string, email: ValidatedEmail): PreparedEmail | Promise<PreparedEmail> {
    const refused = this.events.fromPolicy?.check(accountSid, email.content.from.address);
    const { callbackGuard } = this.events;
    const checkCallback = email.statusCallback !== null && callbackGuard !== undefined;
    // Synchronous unless something must be awaited (a plain send: no promise per message).
    if (refused === undefined && !checkCallback && email.uploads.length === 0)
      return this.build(accountSid, email, []);
    return this.prepareChecked(accountSid, email, refused);
  }

  private async prepareChecked(
    accountSid: string,
    email: ValidatedEmail,
    refused: void | Promise<void>,
  ): Promise<PreparedEmail> {
    if (refused) await refused;
    // Where the callback will be POSTed must be allowed now (and is checked again at each POST); a
    // lookup that fails only for now does not refuse the message.
    const { callbackGuard } = this.events;
    if (email.statusCallback !== null && callbackGuard) {
      await checkUrlHost(new URL(email.statusCallback), callbackGuard, "StatusCallback", true);
    }
    const attachments =
      email.uploads.length > 0 ? await checkAttachments(email.uploads, this.attachmentPolicy) : [];
    return this.build(accountSid, email, attachments);
  }

  /** The message row, its extras and its answer, once every check has passed. */
  private build(
    accountSid: string,
    email: ValidatedEmail,
    attachments: Awaited<ReturnType<typeof checkAttachments>>,
  ): PreparedEmail {
    const content: EmailContent =
      attachments.length === 0
        ? email.content
        : { ...email.content, attachments: attachments.map((a) => a.ref) };
    const now = Date.now();
    const sid = newSid("EM");
    const fromDomain = content.from.address.slice(content.from.address.lastIndexOf("@") + 1);
    const stored = storeContent(content);
    // A scheduled message is stored `scheduled`, its queue row due at SendAt; never leased now.
    const { sendAt } = email;
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
      status: sendAt === null ? "queued" : "scheduled",
      message_id: `<${sid}@${fromDomain}>`,
      status_callback: email.statusCallback,
      error_code: null,
      error_message: null,
      num_attempts: 0,
      date_created: now,
      date_updated: now,
      date_sent: now,
      date_delivered: null,
      send_at: sendAt,
      content_purged_at: null,
    };
    const tags = Object.entries(content.tags).map(([name, value]) => ({
      message_sid: sid,
      account_sid: accountSid,
      name,
      value,
    }));
    const blobs = attachments.map((a) => ({ sha256: a.ref.sha256, size: a.ref.size, content: a.content }));
    const bytes =
      attachments.length === 0
        ? undefined
        : new Map(attachments.map((a) => [a.ref.sha256, a.content as Uint8Array]));
    return {
      message,
      extras: { tags, blobs },
      content,
      attachments: bytes,
      // The answer shows the message as accepted (queued), even when its delivery has just begun; a
      // SendAt within the tolerance for "now" is due already, and reads queued as the store shows it.
      source: messageSource(
        message,
        content,
        sendAt ?? now,
        sendAt !== null && sendAt <= now ? "queued" : message.status,
      ),
    };
  }

  /**
   * Stores prepared messages in one transaction (one write of the group commit), with `answer` on
   * its claimed Idempotency-Key when given: rendered before the commit, so that a repeat gets exactly
   * what this request gets.
   */
  async acceptPrepared(prepared: PreparedEmail[], answer?: IdempotentAnswer): Promise<void> {
    const leased = prepared.map((p) => ({ ...p, lease: this.leaseFor(p.message) }));
    try {
      await this.store.acceptEmails(
        leased.map((p) => ({ message: p.message, lease: p.lease, ...p.extras })),
        answer,
      );
    } catch (error) {
      for (const p of leased) if (p.lease) this.delivery.cancel();
      throw error;
    }
    this.delivered(leased);
  }

  /** A lease when the worker can take the message now; never for a scheduled one. */
  private leaseFor(message: EmailMessageRow): Lease | null {
    return message.send_at === null ? this.delivery.reserve() : null;
  }

  /**
   * Committed: leased messages to the worker now, and the worker woken for the others (at the
   * earliest SendAt, when all of those are scheduled).
   */
  private delivered(committed: Array<PreparedEmail & { lease: Lease | null }>): void {
    let waitingNow = false;
    let earliestSendAt = Number.POSITIVE_INFINITY;
    for (const { message, content, attachments, lease } of committed) {
      this.events.metrics?.messageAccepted();
      if (lease) this.delivery.handOff({ message, content, attachments });
      else if (message.send_at === null) waitingNow = true;
      else earliestSendAt = Math.min(earliestSendAt, message.send_at);
    }
    if (waitingNow) this.delivery.wake();
    if (earliestSendAt !== Number.POSITIVE_INFINITY) this.delivery.wake(earliestSendAt);
  }

  /** A scheduled message was moved to `dueAt`: the worker's sleep may have to end sooner (message-schedule.ts). */
  wakeDelivery(dueAt: number): void {
    this.delivery.wake(dueAt);
  }
}

/** A message ready to be stored (EmailMessageService.prepare), and what its answer and hand-off need. */
export interface PreparedEmail {
  message: EmailMessageRow;
  /** Its tags and attachment bytes, stored with it. */
  extras: MessageExtras;
  content: EmailContent;
  /** Attachment bytes by SHA-256, handed to the worker with the message. */
  attachments: ReadonlyMap<string, Uint8Array> | undefined;
  /** The message as the send's answer shows it. */
  source: EmailMessageSource;
}
