/**
 * Benchmark settings, read once from the environment. Every knob is documented in bench/run.ts and
 * docs/performance.md; a bad value stops the bench with a message that names the variable.
 */
import os from "node:os";
import path from "node:path";

export type SinkChoice = "node" | "smtp-sink";

export interface BenchConfig {
  /** Messages per throughput run (Mailroom HTTP requests, smtp-source messages). */
  messages: number;
  /** Concurrent HTTP connections / SMTP sessions on the submitting side. */
  connections: number;
  /** Offered request rate (req/s) for the latency run. */
  latencyRate: number;
  /** Length of the latency run, seconds. */
  latencySeconds: number;
  /** How long to wait for the sink to count every accepted message, seconds. */
  deliveryTimeoutSeconds: number;
  /**
   * Messages sent (and delivered) before each measured run, to warm up processes and caches. Enough
   * for V8 to have optimised what the send path runs: after 1,000 a Mailroom server still compiles
   * about 170 functions (0.5-0.7 s of a helper thread's CPU) during the next 7,000, and would charge
   * that one-time start-up cost to the throughput run (docs/performance.md, "Thirteenth round").
   */
  warmup: number;
  /** Hard limit on the whole run, minutes: past it the bench cleans up and exits with code 124. */
  timeLimitMinutes: number;
  /** Messages to queue before the "accepted/s with a backlog" run; 0 skips that run. */
  backlog: number;
  /**
   * Whether the queued messages are retried during the backlog run at the server's usual schedule
   * (BENCH_BACKLOG_RETRIES=1). By default retries are held back an hour, so the run measures the
   * size of the queue and not a retry storm of 100,000 messages falling due within a minute.
   */
  backlogRetries: boolean;
  /** Messages in the throughput run of the 100 KB attachment row (it has no latency run). */
  attachmentMessages: number;
  /** Body size of each test message in bytes. */
  messageBytes: number;
  sink: SinkChoice;
  skipPostgres: boolean;
  skipPostfix: boolean;
  skipMailroom: boolean;
  /** Skips the rich Mailroom rows (HTML+text, 100 KB attachment): BENCH_SKIP_RICH=1. */
  skipRich: boolean;
  /** Skips the direct-to-MX row: BENCH_SKIP_MX=1. */
  skipMx: boolean;
  /** Skips the batches-of-100 row: BENCH_SKIP_BATCH=1. */
  skipBatch: boolean;
  /** Skips the templated-send row: BENCH_SKIP_TEMPLATE=1. */
  skipTemplate: boolean;
  /** Skips the Idempotency-Key row: BENCH_SKIP_IDEMPOTENCY=1. */
  skipIdempotency: boolean;
  /** Skips Mailroom's DKIM row: BENCH_SKIP_DKIM=1. */
  skipDkim: boolean;
  /** Destination domains of the direct-to-MX row (BENCH_MX_DOMAINS), served by `mxHosts` MX hosts. */
  mxDomains: number;
  /** MX host addresses of that row, 127.0.0.2 onwards (BENCH_MX_HOSTS, at most 250). */
  mxHosts: number;
  /** Administrative PostgreSQL URL; the bench creates and drops its own database through it. */
  postgresUrl: string;
  /** Parent directory for the run's temporary directory (SQLite file, Postfix queue). */
  tmpDir: string;
  /** When set (BENCH_PROFILE=1), Mailroom runs under --cpu-prof and its profiles are written here. */
  profileDir: string | undefined;
  /** Where the JSON results go. */
  resultsFile: string;
}

function int(name: string, fallback: number, min: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) {
    throw new Error(`${name} must be an integer >= ${min}, got "${raw}"`);
  }
  return value;
}

function flag(name: string): boolean {
  const raw = (process.env[name] ?? "").toLowerCase();
  if (raw === "" || raw === "0" || raw === "false" || raw === "no") return false;
  if (raw === "1" || raw === "true" || raw === "yes") return true;
  throw new Error(`${name} must be 1/0 (or true/false), got "${raw}"`);
}

function sinkChoice(): SinkChoice {
  const raw = process.env.BENCH_SINK ?? "node";
  if (raw === "node" || raw === "smtp-sink") return raw;
  throw new Error(`BENCH_SINK must be node or smtp-sink, got "${raw}"`);
}

export function loadConfig(resultsFile: string): BenchConfig {
  const results = process.env.BENCH_RESULTS ?? resultsFile;
  return {
    messages: int("BENCH_MESSAGES", 20_000, 1),
    connections: int("BENCH_CONNECTIONS", 50, 1),
    latencyRate: int("BENCH_RATE", 500, 1),
    latencySeconds: int("BENCH_LATENCY_SECONDS", 10, 1),
    deliveryTimeoutSeconds: int("BENCH_DELIVERY_TIMEOUT", 120, 1),
    warmup: int("BENCH_WARMUP", 10_000, 0),
    backlog: int("BENCH_BACKLOG", 0, 0),
    backlogRetries: flag("BENCH_BACKLOG_RETRIES"),
    timeLimitMinutes: int("BENCH_TIME_LIMIT", 20, 1),
    messageBytes: int("BENCH_MESSAGE_BYTES", 1024, 1),
    attachmentMessages: int("BENCH_ATTACHMENT_MESSAGES", 1000, 1),
    sink: sinkChoice(),
    skipPostgres: flag("BENCH_SKIP_POSTGRES"),
    skipPostfix: flag("BENCH_SKIP_POSTFIX"),
    skipMailroom: flag("BENCH_SKIP_MAILROOM"),
    skipRich: flag("BENCH_SKIP_RICH"),
    skipMx: flag("BENCH_SKIP_MX"),
    skipBatch: flag("BENCH_SKIP_BATCH"),
    skipTemplate: flag("BENCH_SKIP_TEMPLATE"),
    skipIdempotency: flag("BENCH_SKIP_IDEMPOTENCY"),
    skipDkim: flag("BENCH_SKIP_DKIM"),
    mxDomains: int("BENCH_MX_DOMAINS", 1000, 1),
    mxHosts: Math.min(int("BENCH_MX_HOSTS", 100, 1), 250),
    postgresUrl: process.env.BENCH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/postgres",
    tmpDir: process.env.BENCH_TMPDIR ?? os.tmpdir(),
    resultsFile: results,
    profileDir: flag("BENCH_PROFILE") ? path.join(path.dirname(results), "profiles") : undefined,
  };
}
