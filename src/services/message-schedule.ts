import { ApiError } from "../domain/errors.js";
import { quoteInput } from "../domain/quote.js";
import { parseSendAt } from "../domain/send-at.js";
import type { EmailMessageView, MailStore } from "../store/types.js";

/** The parameters of `POST …/Email/Messages/{Sid}` (UpdateEmailParams in the route). */
export interface MessageUpdate {
  Status?: string | undefined;
  SendAt?: string | undefined;
}

/** Statuses no change leaves: the message is done (or canceled). */
const FINAL = new Set(["sent", "failed", "canceled"]);

/**
 * Cancel and reschedule (issue 14, Twilio's convention of updating a message by POSTing to it):
 * `Status=canceled` while no worker holds the message (scheduled, or queued and unclaimed); `SendAt`
 * alone moves a scheduled message. The store makes the change only if its queue row is still unleased
 * (schedule-queries.ts); when it is not, the message is read again to say why.
 */
export class MessageScheduleService {
  constructor(
    private readonly store: MailStore,
    /** Wakes the delivery worker: a moved message may be due before its current sleep ends. */
    private readonly wakeDelivery: (dueAt: number) => void,
  ) {}

  /** Applies the update to the account's message; resolves to the message as it is now. */
  async update(
    accountSid: string,
    message: EmailMessageView,
    params: MessageUpdate,
  ): Promise<EmailMessageView> {
    const status = params.Status === "" ? undefined : params.Status;
    const sendAt = params.SendAt === "" ? undefined : params.SendAt;
    if (status === undefined && sendAt === undefined) {
      throw new ApiError(
        "InvalidMessageUpdate",
        "Nothing to change: send Status=canceled to cancel the message, or SendAt to move a scheduled one.",
      );
    }
    if (status !== undefined && sendAt !== undefined) {
      throw new ApiError(
        "InvalidMessageUpdate",
        "Status and SendAt cannot be combined: cancel with Status=canceled alone, or move the message with SendAt alone.",
      );
    }
    if (status !== undefined) {
      if (status !== "canceled") {
        throw new ApiError(
          "InvalidMessageUpdate",
          `Status ${quoteInput(status)} cannot be set: the only status a client may set is canceled.`,
        );
      }
      // Asking again for what already holds answers as the first time did (a retried cancel).
      if (message.status === "canceled") return message;
      const now = Date.now();
      if (!(await this.store.cancelEmail(message.sid, now)))
        throw await this.refusal(accountSid, message, "cancel");
    } else {
      const now = Date.now();
      const at = parseSendAt(sendAt as string, now);
      if (!(await this.store.rescheduleEmail(message.sid, at, now))) {
        throw await this.refusal(accountSid, message, "reschedule");
      }
      this.wakeDelivery(at);
    }
    return (await this.store.findEmail(accountSid, message.sid)) ?? message;
  }

  /** Why the store refused: the message as it is now says (it may have changed since it was read). */
  private async refusal(
    accountSid: string,
    read: EmailMessageView,
    what: "cancel" | "reschedule",
  ): Promise<ApiError> {
    const message = (await this.store.findEmail(accountSid, read.sid)) ?? read;
    const verb = what === "cancel" ? "canceled" : "moved";
    if (FINAL.has(message.status)) {
      return new ApiError(
        "MessageFinal",
        `Message ${message.sid} is ${message.status}, which is final: it can no longer be ${verb}.`,
      );
    }
    if (what === "reschedule" && message.status === "queued") {
      return new ApiError(
        "MessageNotScheduled",
        `Message ${message.sid} is queued, not scheduled: only a message sent with SendAt can be moved (it can still be canceled with Status=canceled while no worker has taken it).`,
      );
    }
    return new ApiError(
      "MessageBeingSent",
      `Message ${message.sid} is being sent (a delivery worker holds it), so it can no longer be ${verb}; if the attempt is deferred it becomes queued again, and can be canceled then.`,
    );
  }
}
