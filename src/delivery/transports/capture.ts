import { type OutgoingMessage, type SendReport, sameForAll, type Transport } from "./transport.js";

const CAPTURED = "captured: stored by Mailroom, not sent (no MAILROOM_SMTP_URL is configured)";

/**
 * The transport when no relay is configured. The worker stores the composed MIME with the attempt's
 * record, so "delivering" is only declaring every recipient accepted: the message becomes `sent` and
 * its exact bytes are at GET …/Email/Messages/{Sid}/Mime. Nothing leaves the machine.
 */
export class CaptureTransport implements Transport {
  readonly description = "no MAILROOM_SMTP_URL: capturing mail in the store, nothing leaves this machine";

  async send(message: OutgoingMessage): Promise<SendReport> {
    return {
      recipients: sameForAll(message.envelope.to, "accepted", null, CAPTURED),
      smtpCode: null,
      response: CAPTURED,
      failure: null,
    };
  }

  async close(): Promise<void> {}
}
