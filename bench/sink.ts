/**
 * The SMTP sink every delivery in a run ends at. Two implementations share this interface: our own
 * (bench/sink-node.ts, a worker thread) and Postfix's smtp-sink (bench/sink-smtp-sink.ts).
 */
import { existsSync } from "node:fs";
import type { SinkChoice } from "./config.js";
import { startNodeSink } from "./sink-node.js";
import { SMTP_SINK, startSmtpSink } from "./sink-smtp-sink.js";

export interface SinkCounts {
  /** Messages whose DATA completed since the last reset. */
  messages: number;
  /** Their total size in bytes (our own sink only; 0 otherwise). */
  bytes: number;
  /** Messages whose Message-ID was already seen in this run (our own sink only). */
  duplicates: number;
  /** Messages with a DKIM-Signature header (our own sink only). */
  signed: number;
  /** Epoch milliseconds of the first and last message since the last reset. */
  firstAt: number | undefined;
  lastAt: number | undefined;
}

export interface Sink {
  readonly kind: "node" | "smtp-sink";
  readonly description: string;
  readonly port: number;
  /** Whether the sink reads Message-IDs (and so can count duplicates and message sizes). */
  readonly inspectsMessages: boolean;
  counts(): SinkCounts;
  /**
   * Starts counting from zero (the Message-IDs seen so far are kept, to spot duplicates across phases).
   * With `samples` (our own sink only), the next that many messages are also kept whole for `samples()`.
   */
  reset(samples?: number): Promise<void>;
  /** The messages kept since the last reset, once `count` of them are in (or fewer at the timeout). */
  samples(count: number, timeoutMs: number): Promise<Buffer[]>;
  close(): Promise<void>;
}

/** Epoch milliseconds with sub-millisecond precision, comparable across threads. */
export function now(): number {
  return performance.timeOrigin + performance.now();
}

/** `alsoOn`: more loopback addresses for the node sink (the direct-to-MX row's MX hosts). */
export function startSink(choice: SinkChoice, alsoOn: readonly string[] = []): Promise<Sink> {
  const haveSmtpSink = existsSync(SMTP_SINK);
  if (choice === "smtp-sink" && !haveSmtpSink) {
    throw new Error(`BENCH_SINK=smtp-sink but ${SMTP_SINK} is not installed (it comes with Postfix)`);
  }
  if (choice === "smtp-sink") return startSmtpSink();
  return startNodeSink(alsoOn);
}

/** Polls until the sink has counted `expected` messages; returns false on timeout. */
export async function waitForMessages(sink: Sink, expected: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (sink.counts().messages < expected) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return true;
}

export interface Delivery {
  delivered: number;
  complete: boolean;
  /** From `startedAt` to the last delivery (or to the timeout, when incomplete). */
  seconds: number;
  perSec: number;
}

/**
 * Waits until the sink has counted `expected` messages since its last reset, and measures the delivery
 * rate from `startedAt`. When the timeout hits first, the rate is taken over the whole wait, so a stall
 * is charged to the system under test.
 */
export async function awaitDelivery(
  sink: Sink,
  startedAt: number,
  expected: number,
  timeoutMs: number,
): Promise<Delivery> {
  const complete = await waitForMessages(sink, expected, timeoutMs);
  const counts = sink.counts();
  const endAt = complete && counts.lastAt !== undefined ? counts.lastAt : now();
  const seconds = (endAt - startedAt) / 1000;
  return { delivered: counts.messages, complete, seconds, perSec: counts.messages / seconds };
}
