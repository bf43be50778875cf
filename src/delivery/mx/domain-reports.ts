/**
 * How one domain's outcome reads in an attempt: the SendReport of each way a domain's delivery can end
 * (waiting for its pace, DNS, refused, no host reached, a host's answer), with messages that name the
 * domain or the MX host and say what to do.
 */
import { DnsTemporaryError } from "../../dns/mx.js";
import { DeliveryErrorCodes } from "../../domain/errors.js";
import { oneLine, refusedRecipient } from "../transports/smtp.js";
import type { SmtpError } from "../transports/smtp-connection.js";
import {
  type RecipientOutcome,
  type SendFailure,
  type SendReport,
  sameForAll,
} from "../transports/transport.js";
import type { DomainJob } from "./deliver-domain.js";

/** How many failed hosts, and how many refused recipients, an error message names. */
const NAMED_TRIES = 3;
const LISTED = 5;

/**
 * No host took the transaction: the recipients wait. 16124 when TLS was required (`requiredBy`) and a
 * host failed it, else 16123; the last greeting's reply, if any, is the attempt's.
 */
export function noHostTook(
  { domain, to }: Pick<DomainJob, "domain" | "to">,
  failures: readonly string[],
  lastSetupError: SmtpError | undefined,
  requiredBy: "setting" | "mta-sts" | undefined,
): SendReport {
  const tried = failures.slice(0, NAMED_TRIES).join("; ") + (failures.length > NAMED_TRIES ? "; …" : "");
  const failure: SendFailure =
    requiredBy !== undefined
      ? {
          code: DeliveryErrorCodes.MxTlsRequired,
          message: `${domain} requires TLS (${requiredBy === "setting" ? "MAILROOM_TLS_REQUIRED_DOMAINS" : "its MTA-STS policy says enforce"}) and no MX host offered STARTTLS with a valid certificate${requiredBy === "mta-sts" ? " under a name the policy lists" : ""} (${tried}); the mail waits and is never sent in clear.`,
        }
      : {
          code: DeliveryErrorCodes.MxUnreachable,
          message: `No MX host of ${domain} could be reached (${tried}); retried.`,
        };
  const smtpCode = lastSetupError?.responseCode ?? null;
  const response = lastSetupError?.response ?? null;
  return { recipients: sameForAll(to, "deferred", smtpCode, response), smtpCode, response, failure };
}

export function waiting(
  { domain, to }: Pick<DomainJob, "domain" | "to">,
  until: number,
  why: "rate" | "backoff" | "warmup",
  allowance?: number,
): SendReport {
  const failure: SendFailure =
    why === "warmup"
      ? {
          code: DeliveryErrorCodes.MxDomainWarmup,
          message: `Mail to ${domain} is warming up (MAILROOM_DOMAIN_WARMUP): this step's allowance of ${allowance} message(s) is taken; this message waits in the queue for its place in a later step.`,
        }
      : why === "rate"
        ? {
            code: DeliveryErrorCodes.MxDomainRate,
            message: `Mail to ${domain} is paced by MAILROOM_DOMAIN_RATES; this message waits its turn in the queue.`,
          }
        : {
            code: DeliveryErrorCodes.MxDomainBackoff,
            message: `${domain} asked Mailroom to slow down (421 or 451 4.7.x); all its mail waits a while (MAILROOM_DOMAIN_BACKOFF_MS).`,
          };
  return {
    recipients: sameForAll(to, "deferred", null, null),
    smtpCode: null,
    response: null,
    failure,
    waitUntil: until,
  };
}

export function dnsDeferred({ domain, to }: Pick<DomainJob, "domain" | "to">, error: unknown): SendReport {
  const why =
    error instanceof DnsTemporaryError
      ? error.message
      : `the DNS lookup failed (${(error as Error).message})`;
  return {
    recipients: sameForAll(to, "deferred", null, null),
    smtpCode: null,
    response: null,
    failure: {
      code: DeliveryErrorCodes.MxDnsTemporary,
      message: `Could not find where mail for ${domain} goes: ${why}; retried (check MAILROOM_DNS_SERVERS if it lasts).`,
    },
  };
}

export function refused(to: readonly string[], failure: SendFailure): SendReport {
  return { recipients: sameForAll(to, "rejected", null, null), smtpCode: null, response: null, failure };
}

/** A host took the transaction and answered it with a failure (or dropped it half way). */
export function transactionFailed(to: readonly string[], error: SmtpError, host: string): SendReport {
  const smtpCode = error.responseCode ?? null;
  const response = error.response ?? null;
  if (error.command === "RCPT TO" && error.rejectedErrors?.length) {
    const refusals = new Map(error.rejectedErrors.map((e) => [e.recipient.toLowerCase(), e]));
    const recipients = to.map((address): RecipientOutcome => {
      const refusal = refusals.get(address.toLowerCase());
      return refusal
        ? refusedRecipient(address, refusal)
        : { address, state: "deferred", smtp_code: smtpCode, response };
    });
    return { recipients, smtpCode, response, failure: null };
  }
  let failure: SendFailure;
  let state: RecipientOutcome["state"] = "deferred";
  if (error.oversize) {
    state = "rejected";
    failure = {
      code: DeliveryErrorCodes.MessageTooLarge,
      message: `The message is ${error.oversize.size} bytes; the MX host ${host} accepts at most ${error.oversize.limit} (its SIZE limit). Retrying will not help: send a smaller message.`,
    };
  } else if (smtpCode !== null && response !== null) {
    const permanent = error.permanent ?? smtpCode >= 500;
    if (permanent) state = "rejected";
    failure = permanent
      ? {
          code: DeliveryErrorCodes.MessageRejected,
          message: `The MX host ${host} refused the message permanently: "${oneLine(response)}". Retrying will not help; fix what the reply names.`,
        }
      : {
          code: DeliveryErrorCodes.MessageDeferred,
          message: `The MX host ${host} deferred the message: "${oneLine(response)}".`,
        };
  } else {
    failure = {
      code: DeliveryErrorCodes.MxUnreachable,
      message: `The connection to the MX host ${host} failed during the transaction (${oneLine(error.message)}); retried.`,
    };
  }
  return { recipients: sameForAll(to, state, smtpCode, response), smtpCode, response, failure };
}

/**
 * Names the MX host that answered on each recipient, and, when it refused or deferred some of them,
 * says so in the report's failure (the judge's own summary would speak of "the relay").
 */
export function withDestination(report: SendReport, host: string): SendReport {
  for (const recipient of report.recipients) recipient.destination = host;
  if (report.failure === null) report.failure = recipientFailure(report.recipients, host);
  return report;
}

function recipientFailure(recipients: readonly RecipientOutcome[], host: string): SendFailure | null {
  const deferred = recipients.filter((r) => r.state === "deferred");
  const refused = recipients.filter((r) => r.state === "rejected");
  if (deferred.length > 0) {
    return {
      code: DeliveryErrorCodes.MessageDeferred,
      message: `The MX host ${host} deferred ${withReplies(deferred)}.`,
    };
  }
  if (refused.length === 0) return null;
  return {
    code:
      refused.length < recipients.length
        ? DeliveryErrorCodes.RecipientsRejected
        : DeliveryErrorCodes.MessageRejected,
    message: `The MX host ${host} refused ${withReplies(refused)}. Retrying will not help; check ${
      refused.length === 1 ? "that address" : "those addresses"
    }.`,
  };
}

/** `a@x.example ("550 5.1.1 No such user"), …, and 3 more`. */
function withReplies(recipients: readonly RecipientOutcome[]): string {
  const shown = recipients
    .slice(0, LISTED)
    .map((r) => `${r.address}${r.response ? ` ("${oneLine(r.response)}")` : ""}`);
  const more = recipients.length > LISTED ? `, and ${recipients.length - LISTED} more` : "";
  return shown.join(", ") + more;
}

/** Why a connection could not be set up, in a few words. */
export function setupProblem(error: SmtpError): string {
  const cause = error.originalCode ?? error.code;
  if (error.code === "ETLS") {
    return error.response
      ? `no STARTTLS ("${oneLine(error.response)}")`
      : `TLS failed (${oneLine(error.message)})`;
  }
  if (error.response) return `"${oneLine(error.response)}"`;
  if (cause === "ECONNREFUSED") return "connection refused";
  if (error.code === "ETIMEDOUT") return "no answer in time";
  return oneLine(error.message);
}

export function listOf(to: readonly string[]): string {
  return to.length === 1
    ? (to[0] as string)
    : `${to.length} addresses (${to.slice(0, 3).join(", ")}${to.length > 3 ? ", …" : ""})`;
}
