import { DeliveryErrorCodes } from "../domain/errors.js";
import type { EmailAttemptRow } from "../store/types.js";
import type { RecipientOutcome } from "./transports/transport.js";

/** What the earlier attempts of a message established, read back from its attempt rows. */
export interface AttemptHistory {
  /** Recipients an earlier attempt settled (accepted or refused for good): never sent to again. */
  settled: RecipientOutcome[];
  /** Earlier attempts that count toward MAILROOM_MAX_ATTEMPTS (see countsTowardLimit). */
  counted: number;
}

export const NO_HISTORY: AttemptHistory = { settled: [], counted: 0 };

// Failures that say nothing about the message itself: the relay was down, misconfigured, or Mailroom
// failed. They must not use up a message's attempts, or a relay outage would fail every queued
// message; the age limit still bounds them.
const NOT_COUNTED = new Set<number>([
  DeliveryErrorCodes.RelayUnreachable,
  DeliveryErrorCodes.RelaySetupFailed,
  DeliveryErrorCodes.InsecureAuthRefused,
  DeliveryErrorCodes.DeliveryError,
  DeliveryErrorCodes.MxDnsTemporary,
  DeliveryErrorCodes.MxUnreachable,
  DeliveryErrorCodes.MxTlsRequired,
  DeliveryErrorCodes.MxDomainRate,
  DeliveryErrorCodes.MxDomainBackoff,
  DeliveryErrorCodes.MxDomainWarmup,
]);

export function countsTowardLimit(errorCode: number | null): boolean {
  return errorCode === null || !NOT_COUNTED.has(errorCode);
}

export function readHistory(attempts: readonly EmailAttemptRow[]): AttemptHistory {
  const settled = new Map<string, RecipientOutcome>();
  let counted = 0;
  for (const attempt of attempts) {
    if (countsTowardLimit(attempt.error_code)) counted++;
    for (const recipient of parseRecipients(attempt.recipients)) {
      if (recipient.state !== "deferred") settled.set(recipient.address.toLowerCase(), recipient);
    }
  }
  return { settled: [...settled.values()], counted };
}

function parseRecipients(json: string | null): RecipientOutcome[] {
  if (json === null) return [];
  const parsed: unknown = JSON.parse(json);
  return Array.isArray(parsed) ? (parsed as RecipientOutcome[]) : [];
}
