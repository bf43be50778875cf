import os from "node:os";
import type tls from "node:tls";
import { readRelayUrlOptions } from "../../config/relay-url.js";
import { DeliveryErrorCodes } from "../../domain/errors.js";
import type { RecipientRefusal, SmtpError } from "./smtp-connection.js";
import { SmtpPool, type SmtpPoolOptions } from "./smtp-pool.js";
import { describeRelay, type SmtpSettings } from "./smtp-settings.js";
import {
  type OutgoingMessage,
  type RecipientOutcome,
  type SendFailure,
  type SendReport,
  sameForAll,
  type Transport,
  type TransportConnections,
} from "./transport.js";

export { describeRelay, type SmtpSettings };

/**
 * Delivers through one relay with Mailroom's pooled SMTP client (smtp-pool.ts), so connections are
 * opened once and reused. Every outcome, including a relay that cannot be reached, comes back as a
 * SendReport whose recipients say accepted, deferred (4xx, or no answer) or rejected (5xx).
 */
export class SmtpTransport implements Transport {
  readonly description: string;
  private readonly relay: string;
  private readonly hasAuth: boolean;
  private readonly pool: SmtpPool;

  constructor(settings: SmtpSettings, onTransportError: (error: Error) => void) {
    const url = new URL(settings.url);
    // Only host and port: the URL may carry a password, which must never reach a log or a message.
    this.relay = url.host;
    this.description = describeRelay(settings);
    this.hasAuth = url.username !== "" || url.password !== "";
    // A failing connection is also reported to each send; this only logs it.
    this.pool = new SmtpPool(poolOptions(settings, url), onTransportError);
  }

  async send(message: OutgoingMessage): Promise<SendReport> {
    try {
      const result = await this.pool.send(message.envelope, message.raw);
      return reportSent(message.envelope.to, result.response, result.rejected);
    } catch (error) {
      return reportError(message.envelope.to, error as SmtpError, this.relay, this.hasAuth);
    }
  }

  connections(): TransportConnections {
    return this.pool.counts();
  }

  /** Called after the worker finished or gave up on every delivery, so nothing still in flight is wanted. */
  close(): Promise<void> {
    return this.pool.close();
  }
}

/**
 * The URL supplies host, port (587, or 465 for smtps), credentials (percent-decoded) and TLS mode;
 * its query options (relay-url.ts, checked at start) the EHLO name, tls.* options for tls.connect and
 * allowInsecureAuth. MAILROOM_SMTP_CA_FILE gives the CA.
 */
function poolOptions(settings: SmtpSettings, url: URL): SmtpPoolOptions {
  const secure = url.protocol === "smtps:";
  const user = decode(url.username);
  const pass = decode(url.password);
  const query = readRelayUrlOptions(url);
  const tlsOptions: tls.ConnectionOptions = { ...query.tls } as tls.ConnectionOptions;
  if (settings.ca !== undefined) tlsOptions.ca = settings.ca;
  return {
    host: url.hostname.replace(/^\[(.*)\]$/, "$1"),
    port: Number(url.port) || (secure ? 465 : 587),
    secure,
    startTls: settings.startTls,
    auth: user || pass ? { user, pass } : undefined,
    allowInsecureAuth: query.allowInsecureAuth,
    tls: tlsOptions,
    name: query.name ?? clientName(),
    connectTimeoutMs: settings.connectTimeoutMs,
    socketTimeoutMs: settings.socketTimeoutMs,
    poolSize: settings.poolSize,
  };
}

function decode(component: string): string {
  try {
    return decodeURIComponent(component);
  } catch {
    return component;
  }
}

/** The EHLO name: the machine's host name when it is a domain name, else an address literal (as nodemailer). */
function clientName(): string {
  let name = "";
  try {
    name = os.hostname();
  } catch {
    // No host name to be had.
  }
  if (!name.includes(".")) return "[127.0.0.1]";
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(name)) return `[${name}]`;
  return name.replace(/[\r\n\s]+/g, "");
}

/** The relay took the message: every recipient it did not refuse at RCPT TO got it. */
export function reportSent(
  to: readonly string[],
  response: string,
  rejected: RecipientRefusal[],
): SendReport {
  if (rejected.length === 0) {
    const smtpCode = replyCode(response);
    const recipients = to.map((address): RecipientOutcome => accepted(address, response, smtpCode));
    return { recipients, smtpCode, response, failure: null };
  }
  const refusals = new Map(rejected.map((refusal) => [refusal.recipient.toLowerCase(), refusal]));
  const recipients = to.map((address): RecipientOutcome => {
    const refusal = refusals.get(address.toLowerCase());
    return refusal ? refusedRecipient(address, refusal) : accepted(address, response);
  });
  return { recipients, smtpCode: replyCode(response), response, failure: null };
}

function reportError(to: readonly string[], error: SmtpError, relay: string, hasAuth: boolean): SendReport {
  const smtpCode = error.responseCode ?? null;
  const response = error.response ?? null;
  if (!hasAuth && asksForLogin(error)) {
    // Not a verdict on the message: the relay wants a login Mailroom was not given.
    const failure = {
      code: DeliveryErrorCodes.RelaySetupFailed,
      message: `The relay ${relay} requires authentication ("${oneLine(response ?? error.message)}") and MAILROOM_SMTP_URL has no user name and password: add them (smtp://user:password@host:587).`,
    };
    return { recipients: sameForAll(to, "deferred", smtpCode, response), smtpCode, response, failure };
  }
  // Every recipient refused at RCPT TO: judged per recipient, some may only be deferred.
  if (error.command === "RCPT TO" && error.rejectedErrors?.length) {
    const refusals = new Map(error.rejectedErrors.map((e) => [e.recipient.toLowerCase(), e]));
    const recipients = to.map((address) => {
      const refusal = refusals.get(address.toLowerCase());
      return refusal ? refusedRecipient(address, refusal) : deferred(address, smtpCode, response);
    });
    return { recipients, smtpCode, response, failure: null };
  }
  const failure = describeFailure(error, relay);
  const state = PERMANENT.has(failure.code) ? "rejected" : "deferred";
  return { recipients: sameForAll(to, state, smtpCode, response), smtpCode, response, failure };
}

/** 530 (RFC 4954: authentication required), or an enhanced status 5.7.0 / 5.7.1 that says so in words. */
function asksForLogin(error: SmtpError): boolean {
  const replies = [error.response ?? "", ...(error.rejectedErrors ?? []).map((e) => e.response)];
  return replies.some(
    (reply) => /^530[ -]/.test(reply) || (/^5\d\d[ -]5\.7\.[01]\b/.test(reply) && /auth/i.test(reply)),
  );
}

/** Whole-message failures that retrying cannot cure: every recipient is rejected. */
const PERMANENT = new Set<number>([DeliveryErrorCodes.MessageRejected, DeliveryErrorCodes.MessageTooLarge]);

/** Sorts a whole-message failure into what the user should do about it. */
function describeFailure(error: SmtpError, relay: string): SendFailure {
  if (error.oversize) {
    const { size, limit } = error.oversize;
    return {
      code: DeliveryErrorCodes.MessageTooLarge,
      message: `The message is ${grouped(size)} bytes; the relay ${relay} accepts at most ${grouped(limit)} (its SIZE limit). Retrying will not help: send a smaller message or raise the relay's limit.`,
    };
  }
  const reply = error.response ? `"${oneLine(error.response)}"` : undefined;
  if (error.code === "EAUTH") {
    return {
      code: DeliveryErrorCodes.RelaySetupFailed,
      message: `The relay ${relay} did not accept Mailroom's login${reply ? ` (${reply})` : ""}; check the user name and password in MAILROOM_SMTP_URL.`,
    };
  }
  if (error.code === "EINSECUREAUTH") {
    return {
      code: DeliveryErrorCodes.InsecureAuthRefused,
      message: `The relay ${relay} offers no TLS, so Mailroom did not send the credentials in MAILROOM_SMTP_URL in clear text. Enable STARTTLS on the relay, use smtps://, or, on a network you trust, add ?allowInsecureAuth=true to MAILROOM_SMTP_URL.`,
    };
  }
  if (error.code === "ETLS") {
    // A reply means the relay refused STARTTLS itself; without one, the TLS handshake failed.
    const message = reply
      ? `The relay ${relay} refused STARTTLS (${reply}) and MAILROOM_SMTP_STARTTLS is required; enable TLS on the relay, use smtps://, or set MAILROOM_SMTP_STARTTLS=opportunistic.`
      : `TLS with the relay ${relay} failed (${oneLine(error.message)}); check the relay's certificate; for a private CA or a self-signed certificate, give it in MAILROOM_SMTP_CA_FILE (or, for a relay you trust on a network you trust, add ?tls.rejectUnauthorized=false to MAILROOM_SMTP_URL).`;
    return { code: DeliveryErrorCodes.RelaySetupFailed, message };
  }
  if (error.responseCode !== undefined && reply !== undefined) {
    const what = subjectOf(error.command);
    // 503 is a session problem, not a verdict on the message (isPermanent, as nodemailer had it).
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

function connectionProblem(error: SmtpError): string {
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

export function refusedRecipient(address: string, refusal: RecipientRefusal): RecipientOutcome {
  return {
    address,
    state: refusal.permanent ? "rejected" : "deferred",
    smtp_code: refusal.responseCode || null,
    response: refusal.response,
  };
}

function accepted(address: string, response: string, smtpCode = replyCode(response)): RecipientOutcome {
  return { address, state: "accepted", smtp_code: smtpCode, response };
}

function deferred(address: string, code: number | null, response: string | null): RecipientOutcome {
  return { address, state: "deferred", smtp_code: code, response };
}

function replyCode(response: string): number | null {
  const match = /^(\d{3})/.exec(response);
  return match ? Number(match[1]) : null;
}

/** 12345678 as "12,345,678". */
function grouped(octets: number): string {
  return octets.toLocaleString("en-US");
}

/** Multi-line SMTP replies read as one sentence in an error_message. */
export function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, " ").trim();
}
