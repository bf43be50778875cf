import type { DeliveryErrorCode } from "../../domain/errors.js";

/** What goes out: the SMTP envelope and the exact bytes, composed once per message. */
export interface OutgoingMessage {
  envelope: { from: string; to: string[] };
  raw: string;
  /** The message's SID: direct-to-MX keeps a domain's rate slot for it (domain-gate.ts). */
  key?: string;
}

/** What became of one envelope recipient in one attempt. */
export interface RecipientOutcome {
  address: string;
  /** accepted: the relay took it; rejected: refused for good (5xx); deferred: try again later. */
  state: "accepted" | "rejected" | "deferred";
  smtp_code: number | null;
  response: string | null;
  /** Direct-to-MX: the MX host that gave this answer (absent when none did, and with a relay). */
  destination?: string;
}

/** Why an attempt did not deliver to every recipient, in words a user can act on. */
export interface SendFailure {
  code: DeliveryErrorCode;
  message: string;
}

/** The result of handing one message to a transport. Transports report failures; they do not throw. */
export interface SendReport {
  /** One entry per envelope recipient of this attempt. */
  recipients: RecipientOutcome[];
  /** The reply that concluded the attempt, when the relay gave one. */
  smtpCode: number | null;
  response: string | null;
  /** Set when not every recipient was accepted and one cause explains it (a reply, a lost connection). */
  failure: SendFailure | null;
  /**
   * Direct-to-MX: every deferred recipient waits for its domain (a rate, a back-off) until this time:
   * the retry is due then, not after the usual backoff.
   */
  waitUntil?: number;
}

/** A transport's connections to its relay, for /metrics. */
export interface TransportConnections {
  /** Open now (opening, busy or idle). */
  open: number;
  /** Opened since the transport was made. */
  opened: number;
}

/** Where mail goes: a relay over SMTP, or the store (capture). */
export interface Transport {
  /** One sentence for the start-up log saying what happens to mail. */
  readonly description: string;
  send(message: OutgoingMessage): Promise<SendReport>;
  close(): Promise<void>;
  /** Its connections, when it has any (a relay; capture has none). */
  connections?(): TransportConnections;
}

/** Every recipient in the same state, with the same reply (a whole-message answer). */
export function sameForAll(
  addresses: readonly string[],
  state: RecipientOutcome["state"],
  smtpCode: number | null,
  response: string | null,
): RecipientOutcome[] {
  return addresses.map((address) => ({ address, state, smtp_code: smtpCode, response }));
}
