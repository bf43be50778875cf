/** One line of the results table, as measured (fields are absent when they do not apply). */
import type { LogTally } from "./mailroom.js";

/**
 * What each Mailroom request carries: the plain 1 KB form body (the rows the ratios and targets are
 * computed from), HTML with a text alternative, or text with a 100 KB attachment (JSON, MailComposer);
 * "batch" is the plain message, BATCH_SIZE to a request (message-batch.ts); "template" names an account
 * template with TemplateData (message-template.ts); "idempotent" is the plain request with its own
 * Idempotency-Key (message-idempotent.ts).
 */
export type Payload = "plain" | "html+text" | "attachment" | "batch" | "template" | "idempotent";

export interface Row {
  name: string;
  status: "ok" | "skipped" | "failed";
  /** Mailroom rows: what each request carried. */
  payload?: Payload;
  /** A Mailroom row run with a webhook subscribed to every event (not in the ratios). */
  webhook?: boolean;
  /** Messages per HTTP request (the batch row); counts and rates are of messages, not requests. */
  messagesPerRequest?: number;
  /** A Mailroom row whose From domain has an active DKIM key (RSA-2048): every message signed (not in the ratios). */
  dkim?: boolean;
  /** The direct-to-MX row: its destination domains and MX hosts (compared with the plain SQLite row). */
  mx?: { domains: number; hosts: number };
  /** Why it was skipped or failed. */
  reason?: string;
  /** Messages submitted in the throughput run. */
  messages?: number;
  /** Submissions acknowledged per second (HTTP 2xx for Mailroom, SMTP 250 after DATA for Postfix). */
  acceptedPerSec?: number;
  /** Messages counted at the sink per second, from the first submission to the last delivery. */
  deliveredPerSec?: number;
  delivered?: number;
  /** False when the sink had not counted every accepted message before the delivery timeout. */
  deliveryComplete?: boolean;
  /** Seconds from the first submission to the last delivery. */
  deliverySeconds?: number;
  latency?: {
    offeredRate: number;
    achievedRate: number;
    p50Ms: number | undefined;
    p99Ms: number | undefined;
    maxMs: number | undefined;
    ok: number;
    non2xx: number;
    errors: number;
    maxStartLagMs: number;
  };
  /** Why the row has no latency run, when it has none. */
  latencyNotRun?: string;
  /** Peak memory in MB, and how it was measured. */
  peakRssMb?: number;
  rssNote?: string;
  /** Average size of a message as the sink received it (headers + body), bytes. */
  avgMessageBytes?: number;
  /** Messages delivered more than once (same Message-ID) during this row. */
  duplicates?: number;
  http?: { non2xx: number; errors: number; timeouts: number; statusCodes: Record<string, number> };
  backlog?: {
    queued: number;
    emptyAcceptedPerSec: number;
    backlogAcceptedPerSec: number;
    /** backlogAcceptedPerSec / emptyAcceptedPerSec */
    ratio: number;
    non2xx: number;
    errors: number;
  };
  /** The webhook row: every event's delivery to a receiver subscribed to all types. */
  webhooks?: {
    /** Events the throughput run should produce (accepted and sent per message). */
    expected: number;
    /** Distinct events received, and POSTs in all (a retried event is posted again). */
    events: number;
    posts: number;
    /** From the first submission to the last event received. */
    seconds: number;
    eventsPerSec: number;
  };
  logs?: LogTally;
  details?: Record<string, string | number | boolean>;
}

export function skipped(name: string, reason: string): Row {
  return { name, status: "skipped", reason };
}

export function failed(name: string, error: unknown): Row {
  return { name, status: "failed", reason: error instanceof Error ? error.message : String(error) };
}
