import os from "node:os";
import type tls from "node:tls";
import { DeliveryErrorCodes } from "../../domain/errors.js";
import type { RecipientRefusal, SmtpError } from "./smtp-connection.js";
import { SmtpPool, type SmtpPoolOptions } from "./smtp-pool.js";
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
 * Delivers through one relay with Mailroom's pooled SMTP client (smtp-pool.ts), so connections are
 * opened once and reused. Every outcome, including a relay that cannot be reached, comes back as a
 * SendReport whose recipients say accepted, deferred (4xx, or no answer) or rejected (5xx).
 */
export class SmtpTransport implements Transport {
  readonly description: string;
  private readonly relay: string;
  private readonly pool: SmtpPool;

  constructor(settings: SmtpSettings, onTransportError: (error: Error) => void) {
    const url = new URL(settings.url);
    // Only host and port: the URL may carry a password, which must never reach a log or a message.
    this.relay = url.host;
    this.description = describeRelay(settings);
    // A failing connection is also reported to each send; this only logs it.
    this.pool = new SmtpPool(poolOptions(settings, url), onTransportError);
  }

  async send(message: OutgoingMessage): Promise<SendReport> {
    try {
      const result = await this.pool.send(message.envelope, message.raw);
      return reportSent(message.envelope.to, result.response, result.rejected);
    } catch (error) {
      return reportError(message.envelope.to, error as SmtpError, this.relay);
    }
  }

  /** Called after the worker finished or gave up on every delivery, so nothing still in flight is wanted. */
  async close(): Promise<void> {
    this.pool.close();
  }
}

/** One sentence for the start-up log: where mail goes and how, without the URL's credentials. */
export function describeRelay(settings: SmtpSettings): string {
  const url = new URL(settings.url);
  const tlsMode = url.protocol === "smtps:" ? "implicit TLS" : `STARTTLS ${settings.startTls}`;
  return `relaying mail through ${url.protocol}//${url.host} (${tlsMode}, up to ${settings.poolSize} connections)`;
}

/**
 * The URL supplies host, port (587, or 465 for smtps), credentials (percent-decoded) and TLS mode;
 * query options tls.* (e.g. ?tls.rejectUnauthorized=false for a relay with a private certificate)
 * go to tls.connect, and ?name= replaces the name sent with EHLO.
 */
function poolOptions(settings: SmtpSettings, url: URL): SmtpPoolOptions {
  const secure = url.protocol === "smtps:";
  const user = decode(url.username);
  const pass = decode(url.password);
  const tlsOptions: Record<string, unknown> = {};
  let name = clientName();
  for (const [key, value] of url.searchParams) {
    if (key.startsWith("tls.")) {
      const option = key.slice(4);
      if (option && !UNSAFE_KEYS.has(option)) tlsOptions[option] = queryValue(value);
    } else if (key === "name" && value.trim()) {
      name = value.replace(/\s+/g, "");
    }
  }
  return {
    host: url.hostname.replace(/^\[(.*)\]$/, "$1"),
    port: Number(url.port) || (secure ? 465 : 587),
    secure,
    startTls: settings.startTls,
    auth: user || pass ? { user, pass } : undefined,
    tls: tlsOptions as tls.ConnectionOptions,
    name,
    connectTimeoutMs: settings.connectTimeoutMs,
    socketTimeoutMs: settings.socketTimeoutMs,
    poolSize: settings.poolSize,
  };
}

const UNSAFE_KEYS = new Set(["__proto__", "constructor", "prototype"]);

/** As nodemailer read URL options: true, false and numbers are typed, the rest stays text. */
function queryValue(value: string): unknown {
  if (value === "true") return true;
  if (value === "false") return false;
  const number = Number(value);
  return value.trim() !== "" && !Number.isNaN(number) ? number : value;
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
function reportSent(to: readonly string[], response: string, rejected: RecipientRefusal[]): SendReport {
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

function reportError(to: readonly string[], error: SmtpError, relay: string): SendReport {
  const smtpCode = error.responseCode ?? null;
  const response = error.response ?? null;
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
  if (error.code === "ETLS") {
    // A reply means the relay refused STARTTLS itself; without one, the TLS handshake failed.
    const message = reply
      ? `The relay ${relay} refused STARTTLS (${reply}) and MAILROOM_SMTP_STARTTLS is required; enable TLS on the relay, use smtps://, or set MAILROOM_SMTP_STARTTLS=opportunistic.`
      : `TLS with the relay ${relay} failed (${oneLine(error.message)}); check the relay's certificate, or add ?tls.rejectUnauthorized=false to MAILROOM_SMTP_URL for a relay you trust.`;
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

function refusedRecipient(address: string, refusal: RecipientRefusal): RecipientOutcome {
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
function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, " ").trim();
}
