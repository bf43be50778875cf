import nodemailer, { type NodemailerError } from "nodemailer";
import { DeliveryErrorCodes } from "../../domain/errors.js";
import {
  type OutgoingMessage,
  type RecipientOutcome,
  type SendFailure,
  type SendReport,
  sameForAll,
  type Transport,
} from "./transport.js";

export interface SmtpSettings {
  /** smtp://[user:pass@]host[:port] (STARTTLS per `startTls`) or smtps://… (TLS from the first byte). */
  url: string;
  poolSize: number;
  startTls: "opportunistic" | "required";
  connectTimeoutMs: number;
  socketTimeoutMs: number;
}

/**
 * Delivers through one relay with nodemailer's pooled SMTP client, so connections are opened once
 * and reused. Every outcome, including a relay that cannot be reached, comes back as a SendReport
 * whose recipients say accepted, deferred (4xx, or no answer) or rejected (5xx).
 */
export class SmtpTransport implements Transport {
  readonly description: string;
  private readonly relay: string;
  private readonly mailer: ReturnType<typeof createPool>;

  constructor(settings: SmtpSettings, onTransportError: (error: Error) => void) {
    const url = new URL(settings.url);
    const implicitTls = url.protocol === "smtps:";
    // Only host and port: the URL may carry a password, which must never reach a log or a message.
    this.relay = url.host;
    this.description = `relaying mail through ${url.protocol}//${this.relay} (${
      implicitTls ? "implicit TLS" : `STARTTLS ${settings.startTls}`
    }, up to ${settings.poolSize} connections)`;
    this.mailer = createPool(settings, implicitTls);
    // A failing pooled connection is also reported to each send; this only keeps it from crashing us.
    this.mailer.on("error", onTransportError);
  }

  async send(message: OutgoingMessage): Promise<SendReport> {
    try {
      const info = await this.mailer.sendMail({ envelope: message.envelope, raw: message.raw });
      return reportSent(message.envelope.to, info.response, info.rejectedErrors ?? []);
    } catch (error) {
      return reportError(message.envelope.to, error as NodemailerError, this.relay);
    }
  }

  /** Called after the worker finished or gave up on every delivery, so nothing still in flight is wanted. */
  async close(): Promise<void> {
    this.mailer.close({ force: true });
  }
}

function createPool(settings: SmtpSettings, implicitTls: boolean) {
  return nodemailer.createTransport({
    pool: true,
    // The URL supplies host, port, credentials and TLS mode; query options (e.g.
    // ?tls.rejectUnauthorized=false for a relay with a private certificate) override the ones below.
    url: settings.url,
    maxConnections: settings.poolSize,
    requireTLS: !implicitTls && settings.startTls === "required",
    opportunisticTLS: !implicitTls && settings.startTls === "opportunistic",
    connectionTimeout: settings.connectTimeoutMs,
    greetingTimeout: settings.connectTimeoutMs,
    dnsTimeout: settings.connectTimeoutMs,
    socketTimeout: settings.socketTimeoutMs,
    logger: false,
  });
}

/** The relay took the message: every recipient it did not refuse at RCPT TO got it. */
function reportSent(to: readonly string[], response: string, rejected: NodemailerError[]): SendReport {
  const refusals = new Map(rejected.map((error) => [(error.recipient ?? "").toLowerCase(), error]));
  const recipients = to.map((address): RecipientOutcome => {
    const refusal = refusals.get(address.toLowerCase());
    return refusal ? refusedRecipient(address, refusal) : accepted(address, response);
  });
  return { recipients, smtpCode: replyCode(response), response, failure: null };
}

function reportError(to: readonly string[], error: NodemailerError, relay: string): SendReport {
  const smtpCode = error.responseCode ?? null;
  const response = error.response ?? null;
  // Every recipient refused at RCPT TO: judged per recipient, some may only be deferred.
  if (error.command === "RCPT TO" && error.rejectedErrors?.length) {
    const refusals = new Map(error.rejectedErrors.map((e) => [(e.recipient ?? "").toLowerCase(), e]));
    const recipients = to.map((address) => {
      const refusal = refusals.get(address.toLowerCase());
      return refusal ? refusedRecipient(address, refusal) : deferred(address, smtpCode, response);
    });
    return { recipients, smtpCode, response, failure: null };
  }
  const failure = describeFailure(error, relay);
  const state = failure.code === DeliveryErrorCodes.MessageRejected ? "rejected" : "deferred";
  return { recipients: sameForAll(to, state, smtpCode, response), smtpCode, response, failure };
}

/** Sorts a whole-message failure into what the user should do about it. */
function describeFailure(error: NodemailerError, relay: string): SendFailure {
  const reply = error.response ? `"${oneLine(error.response)}"` : undefined;
  if (error.code === "EAUTH" || error.code === "ENOAUTH") {
    return {
      code: DeliveryErrorCodes.RelaySetupFailed,
      message: `The relay ${relay} did not accept Mailroom's login${reply ? ` (${reply})` : ""}; check the user name and password in MAILROOM_SMTP_URL.`,
    };
  }
  if (error.code === "ETLS" || error.code === "EREQUIRETLS") {
    // A reply means the relay refused STARTTLS itself; without one, the TLS handshake failed.
    const message = reply
      ? `The relay ${relay} refused STARTTLS (${reply}) and MAILROOM_SMTP_STARTTLS is required; enable TLS on the relay, use smtps://, or set MAILROOM_SMTP_STARTTLS=opportunistic.`
      : `TLS with the relay ${relay} failed (${oneLine(error.message)}); check the relay's certificate, or add ?tls.rejectUnauthorized=false to MAILROOM_SMTP_URL for a relay you trust.`;
    return { code: DeliveryErrorCodes.RelaySetupFailed, message };
  }
  if (error.responseCode !== undefined && reply !== undefined) {
    const what = subjectOf(error.command);
    // nodemailer knows the exceptions (503 is a session problem, not a verdict on the message).
    const permanent = error.permanent ?? error.responseCode >= 500;
    return permanent
      ? {
          code: DeliveryErrorCodes.MessageRejected,
          message: `The relay refused ${what} permanently: ${reply}. Retrying will not help; fix what the reply names.`,
        }
      : { code: DeliveryErrorCodes.MessageDeferred, message: `The relay deferred ${what}: ${reply}.` };
  }
  return {
    code: DeliveryErrorCodes.RelayUnreachable,
    message: `Could not deliver through the relay ${relay}: ${connectionProblem(error)}.`,
  };
}

function subjectOf(command: string | undefined): string {
  if (command === "MAIL FROM") return "the sender";
  if (command === "RCPT TO") return "the recipients";
  return "the message";
}

function connectionProblem(error: NodemailerError): string {
  const cause = error.originalCode ?? error.code;
  if (cause === "ECONNREFUSED") return "connection refused (is the relay running, and is the port right?)";
  if (error.code === "EDNS" || cause === "ENOTFOUND") return "its host name does not resolve";
  if (error.code === "ETIMEDOUT") {
    return error.timeoutType === "SOCKET_TIMEOUT"
      ? "the relay stopped answering (MAILROOM_SMTP_SOCKET_TIMEOUT_MS)"
      : "no answer in time (MAILROOM_SMTP_CONNECT_TIMEOUT_MS)";
  }
  return oneLine(error.message);
}

function refusedRecipient(address: string, refusal: NodemailerError): RecipientOutcome {
  const code = refusal.responseCode ?? null;
  const permanent = refusal.permanent ?? (code !== null && code >= 500);
  return {
    address,
    state: permanent ? "rejected" : "deferred",
    smtp_code: code,
    response: refusal.response ?? null,
  };
}

function accepted(address: string, response: string): RecipientOutcome {
  return { address, state: "accepted", smtp_code: replyCode(response), response };
}

function deferred(address: string, code: number | null, response: string | null): RecipientOutcome {
  return { address, state: "deferred", smtp_code: code, response };
}

function replyCode(response: string): number | null {
  const match = /^(\d{3})/.exec(response);
  return match ? Number(match[1]) : null;
}

/** Multi-line SMTP replies read as one sentence in an error_message. */
function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, " ").trim();
}
