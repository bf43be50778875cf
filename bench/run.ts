/**
 * `npm run bench`: Mailroom end to end, side by side with Postfix on the same machine, in one run.
 *
 * Rows (each skipped with a printed reason when it cannot run here):
 *   SMTP ceiling          smtp-source → sink                       (needs Postfix's smtp-source)
 *   Postfix relay         smtp-source → private Postfix → sink     (needs Postfix, run as root)
 *   Mailroom (SQLite)     autocannon → Mailroom HTTP API → SMTP relay → sink
 *   Mailroom (PostgreSQL) the same on a throwaway database         (needs PostgreSQL reachable)
 *   Mailroom (SQLite), batches of 100  the SQLite row's messages as JSON arrays of 100 to …/Messages/Batch
 *   Mailroom (SQLite), templated send  the SQLite row's form request naming an account template (made
 *                                          before the run) with TemplateData: it renders the plain row's
 *                                          Subject and a Text of its size; samples checked at the sink
 *                                          (needs BENCH_SINK=node)
 *   Mailroom (SQLite), Idempotency-Key on every send  the SQLite row with a new key (a UUID) on every
 *                                          request; then one key sent twice must replay, not send
 *   Mailroom (SQLite), relay with DKIM (RSA-2048)  the SQLite row with a sending domain for the From
 *                                          domain: every message signed in the relay thread
 *   Postfix relay with OpenDKIM            the Postfix relay row with a private OpenDKIM as its milter,
 *                                          signing every message (RSA-2048, relaxed/relaxed); needs the
 *                                          opendkim and opendkim-tools packages and BENCH_SINK=node, which
 *                                          counts signed messages and keeps 10 that mailauth verifies
 *   Mailroom (SQLite), direct to MX        the SQLite row with MAILROOM_DELIVERY_MODE=mx: each message to
 *                                          one of BENCH_MX_DOMAINS domains in turn, their MX hosts on
 *                                          127.0.0.2… (the sink listens there too), one test DNS server
 *   Mailroom (SQLite), HTML+text           the SQLite row with JSON bodies: Html (~1 KB) and Text
 *   Mailroom (SQLite), 100 KB attachment   the SQLite row with JSON bodies: Text and a 100 KB attachment
 *   Mailroom (SQLite), webhook on every event  the SQLite row with one webhook subscribed to every event
 *                                          type, answered by a receiver in this process
 *                                          whose bytes differ in every request; throughput only
 * Everything listens on 127.0.0.1 only; every process, temp dir and database the bench creates is removed
 * at the end, on errors and on Ctrl-C. Results: a table on stdout, and bench/results/latest.json.
 *
 * Environment knobs (defaults in brackets):
 *   BENCH_MESSAGES=20000         messages per throughput run (HTTP requests / smtp-source messages)
 *   BENCH_CONNECTIONS=50         concurrent HTTP connections / SMTP sessions submitting them
 *   BENCH_MESSAGE_BYTES=1024     body size of each message
 *   BENCH_ATTACHMENT_MESSAGES=1000  messages in the 100 KB attachment row's throughput run
 *   BENCH_WARMUP=1000            messages sent and delivered before each measured run
 *   BENCH_RATE=500               offered request rate of the latency run, req/s
 *   BENCH_LATENCY_SECONDS=10     length of the latency run
 *   BENCH_DELIVERY_TIMEOUT=120   seconds to wait for the sink to count every accepted message
 *   BENCH_BACKLOG=0              when > 0, also measure accepted/s with this many messages queued
 *                                (e.g. 100000; Mailroom is restarted with its relay down for this)
 *   BENCH_BACKLOG_RETRIES=1      let the queued messages be retried during that run (default: held back an hour)
 *   BENCH_SINK=node              node: the bench's own sink (counts sizes and duplicate Message-IDs);
 *                                smtp-sink: Postfix's smtp-sink
 *   BENCH_SKIP_POSTFIX=1         skip the SMTP ceiling and Postfix rows
 *   BENCH_SKIP_MAILROOM=1        skip the Mailroom rows
 *   BENCH_SKIP_POSTGRES=1        skip the Mailroom (PostgreSQL) row
 *   BENCH_SKIP_RICH=1            skip the HTML+text, 100 KB attachment and webhook rows
 *   BENCH_SKIP_MX=1              skip the direct-to-MX row (it needs BENCH_SINK=node)
 *   BENCH_SKIP_BATCH=1           skip the batches-of-100 row
 *   BENCH_SKIP_TEMPLATE=1        skip the templated-send row
 *   BENCH_SKIP_IDEMPOTENCY=1     skip the Idempotency-Key row
 *   BENCH_MX_DOMAINS=1000        destination domains of the direct-to-MX row
 *   BENCH_MX_HOSTS=100           their MX host addresses (127.0.0.2 onwards; at most 250)
 *   BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres
 *                                admin connection used to create and drop the throwaway database
 *   BENCH_TIME_LIMIT=20          minutes; past it the bench cleans up and exits with code 124
 *   BENCH_TMPDIR=$TMPDIR         where the run's temp dir goes (keep it on a real disk: fsync matters)
 *   BENCH_RESULTS=bench/results/latest.json
 *   BENCH_PROFILE=1              run Mailroom under --cpu-prof; profiles go to bench/results/profiles/
 *                                (open them in Chrome DevTools or speedscope)
 *   BENCH_NODE_FLAGS="--flag …"  more node flags for the Mailroom server (e.g. --perf-basic-prof)
 *   BENCH_PERF_CONTROL=fifo      a perf control FIFO: perf records each throughput run only (performance.md)
 * Other MAILROOM_* variables (e.g. MAILROOM_SMTP_POOL_SIZE) pass through to the benchmarked server.
 */

import { existsSync } from "node:fs";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { cleanupAll, installExitHandlers, isClosing, onCleanup } from "./cleanup.js";
import { type BenchConfig, loadConfig } from "./config.js";
import { describeMachine } from "./machine.js";
import { mailroomUnavailable, passedThroughSettings } from "./mailroom.js";
import { openDkimUnavailable } from "./opendkim.js";
import { postfixUnavailable, SMTP_SOURCE } from "./postfix.js";
import { createTempDatabase, postgresUnavailable, redact } from "./postgres.js";
import { ratios, renderReport, targets, writeReport } from "./report.js";
import { failed, type Row, skipped } from "./row.js";
import { type MailroomScenario, mailroomRow } from "./scenario-mailroom.js";
import { mxHostAddresses, prepareMx } from "./scenario-mx.js";
import {
  CEILING,
  POSTFIX_OPENDKIM,
  POSTFIX_RELAY,
  postfixOpenDkimRelay,
  postfixRelay,
  smtpCeiling,
} from "./scenario-smtp.js";
import { type Sink, startSink } from "./sink.js";

const DEFAULT_RESULTS = fileURLToPath(new URL("../../bench/results/latest.json", import.meta.url));
const SQLITE = "Mailroom (SQLite)";
const POSTGRES = "Mailroom (PostgreSQL)";
const SQLITE_DKIM = "Mailroom (SQLite), relay with DKIM (RSA-2048)";
const SQLITE_HTML = "Mailroom (SQLite), HTML+text";
const SQLITE_ATTACHMENT = "Mailroom (SQLite), 100 KB attachment";
const SQLITE_WEBHOOK = "Mailroom (SQLite), webhook on every event";
const SQLITE_BATCH = "Mailroom (SQLite), batches of 100";
const SQLITE_MX = "Mailroom (SQLite), direct to MX";
const SQLITE_TEMPLATE = "Mailroom (SQLite), templated send";
const SQLITE_IDEMPOTENT = "Mailroom (SQLite), Idempotency-Key on every send";
const RICH = [SQLITE_HTML, SQLITE_ATTACHMENT, SQLITE_WEBHOOK];

function say(line: string): void {
  console.error(line);
}

async function measure(name: string, work: () => Promise<Row>): Promise<Row> {
  say(`\n== ${name} ==`);
  const started = Date.now();
  try {
    const row = await work();
    say(`  done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
    return row;
  } catch (error) {
    if (isClosing()) return failed(name, "interrupted");
    say(`  FAILED: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    return failed(name, error);
  }
}

function skip(name: string, reason: string): Row {
  say(`\n== ${name} ==\n  skipped: ${reason}`);
  return skipped(name, reason);
}

async function smtpRows(sink: Sink, config: BenchConfig, baseDir: string): Promise<Row[]> {
  if (config.skipPostfix) {
    return [CEILING, POSTFIX_RELAY, POSTFIX_OPENDKIM].map((name) => skip(name, "BENCH_SKIP_POSTFIX=1"));
  }
  if (!existsSync(SMTP_SOURCE)) {
    const reason = `Postfix is not installed (${SMTP_SOURCE} not found; e.g. apt-get install postfix)`;
    say(`\nPostfix side skipped: ${reason}`);
    return [skip(CEILING, reason), skip(POSTFIX_RELAY, reason), skip(POSTFIX_OPENDKIM, reason)];
  }
  const rows = [await measure(CEILING, () => smtpCeiling(sink, config))];
  const why = postfixUnavailable();
  if (why) {
    say(`\nPostfix relay skipped: ${why}`);
    return [...rows, skip(POSTFIX_RELAY, why), skip(POSTFIX_OPENDKIM, why)];
  }
  rows.push(await measure(POSTFIX_RELAY, () => postfixRelay(sink, config, baseDir)));
  rows.push(await postfixOpenDkimRow(sink, config, baseDir));
  return rows;
}

/** Postfix signing through OpenDKIM as a milter: the fair comparison for the DKIM row (issue 15). */
async function postfixOpenDkimRow(sink: Sink, config: BenchConfig, baseDir: string): Promise<Row> {
  const why = openDkimUnavailable();
  // The bench installs nothing; the row says what is missing.
  if (why) return skip(POSTFIX_OPENDKIM, why);
  if (!sink.inspectsMessages) {
    return skip(POSTFIX_OPENDKIM, "needs the bench's own sink (BENCH_SINK=node) to check the signatures");
  }
  return measure(POSTFIX_OPENDKIM, () => postfixOpenDkimRelay(sink, config, baseDir));
}

const sqliteTarget = async (dir: string) => ({ dataDir: dir, databaseUrl: undefined });

async function mailroomRows(sink: Sink, config: BenchConfig, baseDir: string): Promise<Row[]> {
  const names = [SQLITE, SQLITE_DKIM, POSTGRES, SQLITE_BATCH, SQLITE_TEMPLATE, SQLITE_IDEMPOTENT, SQLITE_MX];
  if (config.skipMailroom) return names.map((name) => skip(name, "BENCH_SKIP_MAILROOM=1"));
  const why = mailroomUnavailable();
  if (why) return names.map((name) => skip(name, why));

  const sqlite: MailroomScenario = { name: SQLITE, payload: "plain", target: sqliteTarget };
  const rows = [await measure(SQLITE, () => mailroomRow(sqlite, sink, config, baseDir))];
  // Right after the plain row it is compared with (issue 15: DKIM costs at most 25% of it).
  const signed: MailroomScenario = { name: SQLITE_DKIM, payload: "plain", target: sqliteTarget, dkim: true };
  rows.push(await measureUnless(config.skipDkim, "BENCH_SKIP_DKIM", signed, sink, config, baseDir));
  rows.push(await mxRow(sink, config, baseDir));
  rows.push(await postgresRow(sink, config, baseDir));
  // The plain row's messages in batches (issue 14): its cost per message beside the plain row's.
  const batch: MailroomScenario = { name: SQLITE_BATCH, payload: "batch", target: sqliteTarget };
  rows.push(await measureUnless(config.skipBatch, "BENCH_SKIP_BATCH", batch, sink, config, baseDir));
  rows.push(await templateRow(sink, config, baseDir));
  // The plain row's sends, each under its own Idempotency-Key (issue 14): what the key's claim costs.
  const keyed: MailroomScenario = { name: SQLITE_IDEMPOTENT, payload: "idempotent", target: sqliteTarget };
  rows.push(
    await measureUnless(config.skipIdempotency, "BENCH_SKIP_IDEMPOTENCY", keyed, sink, config, baseDir),
  );
  return rows;
}

/** A Mailroom row, or its skip line when its BENCH_SKIP_* knob is set. */
function measureUnless(
  skipped: boolean,
  knob: string,
  scenario: MailroomScenario,
  sink: Sink,
  config: BenchConfig,
  baseDir: string,
): Promise<Row> | Row {
  if (skipped) return skip(scenario.name, `${knob}=1`);
  return measure(scenario.name, () => mailroomRow(scenario, sink, config, baseDir));
}

/** The plain row's message rendered from an account template (issue 14): what rendering costs. */
async function templateRow(sink: Sink, config: BenchConfig, baseDir: string): Promise<Row> {
  if (config.skipTemplate) return skip(SQLITE_TEMPLATE, "BENCH_SKIP_TEMPLATE=1");
  if (!sink.inspectsMessages) {
    return skip(SQLITE_TEMPLATE, "needs the bench's own sink (BENCH_SINK=node) to check the rendered text");
  }
  const scenario: MailroomScenario = { name: SQLITE_TEMPLATE, payload: "template", target: sqliteTarget };
  return measure(SQLITE_TEMPLATE, () => mailroomRow(scenario, sink, config, baseDir));
}

/** Right after the SQLite row it is compared with: the same load, each message to its recipients' MX. */
async function mxRow(sink: Sink, config: BenchConfig, baseDir: string): Promise<Row> {
  if (config.skipMx) return skip(SQLITE_MX, "BENCH_SKIP_MX=1");
  if (sink.kind !== "node")
    return skip(SQLITE_MX, "needs the bench's own sink (BENCH_SINK=node) on 127.0.0.2…");
  const scenario: MailroomScenario = {
    name: SQLITE_MX,
    payload: "plain",
    target: sqliteTarget,
    prepare: (mxSink) => prepareMx(config, mxSink),
  };
  return measure(SQLITE_MX, () => mailroomRow(scenario, sink, config, baseDir));
}

async function postgresRow(sink: Sink, config: BenchConfig, baseDir: string): Promise<Row> {
  if (config.skipPostgres) return skip(POSTGRES, "BENCH_SKIP_POSTGRES=1");
  const pgWhy = await postgresUnavailable(config.postgresUrl);
  if (pgWhy) return skip(POSTGRES, `${pgWhy}; set BENCH_POSTGRES_URL to include it`);
  const postgres: MailroomScenario = {
    name: POSTGRES,
    payload: "plain",
    target: async (dir) => {
      const database = await createTempDatabase(config.postgresUrl);
      say(
        `  throwaway database ${database.name} (PostgreSQL ${database.serverVersion} at ${redact(config.postgresUrl)})`,
      );
      return { dataDir: dir, databaseUrl: database.url };
    },
  };
  return measure(POSTGRES, () => mailroomRow(postgres, sink, config, baseDir));
}

/**
 * The rich rows run last, so that the rows the ratios compare are measured as before, and the
 * attachment row's writes (about 240 KB a message) cannot slow them down.
 */
async function richRows(sink: Sink, config: BenchConfig, baseDir: string): Promise<Row[]> {
  const why = config.skipMailroom
    ? "BENCH_SKIP_MAILROOM=1"
    : config.skipRich
      ? "BENCH_SKIP_RICH=1"
      : mailroomUnavailable();
  if (why) return RICH.map((name) => skip(name, why));
  const scenarios: MailroomScenario[] = [
    { name: SQLITE_HTML, payload: "html+text", target: sqliteTarget },
    { name: SQLITE_ATTACHMENT, payload: "attachment", target: sqliteTarget },
    { name: SQLITE_WEBHOOK, payload: "plain", target: sqliteTarget, webhook: true },
  ];
  const rows: Row[] = [];
  for (const scenario of scenarios) {
    rows.push(await measure(scenario.name, () => mailroomRow(scenario, sink, config, baseDir)));
  }
  return rows;
}

function commandLine(): string {
  const knobs = Object.entries(process.env)
    .filter(([key]) => key.startsWith("BENCH_"))
    .map(([key, value]) => `${key}=${value}`);
  const command =
    process.env.npm_lifecycle_event === "bench"
      ? "npm run bench"
      : `node ${path.relative(process.cwd(), process.argv[1] ?? "")}`;
  return [...knobs, command].join(" ");
}

async function main(): Promise<number> {
  const config = loadConfig(DEFAULT_RESULTS);
  installExitHandlers(config.timeLimitMinutes * 60_000);
  const machine = describeMachine(config.tmpDir);
  if (machine.loadAverage > machine.cores) {
    say(
      `warning: load average ${machine.loadAverage} on ${machine.cores} cores: other work will skew the numbers`,
    );
  }
  if (machine.tmpFilesystem === "tmpfs") {
    say(`warning: ${config.tmpDir} is a tmpfs, where fsync costs nothing; set BENCH_TMPDIR to a real disk`);
  }

  const baseDir = await mkdtemp(path.join(config.tmpDir, "mailroom-bench-"));
  await chmod(baseDir, 0o755); // Postfix's unprivileged processes must reach their queue inside it
  onCleanup(`remove ${baseDir}`, () => rm(baseDir, { recursive: true, force: true }));

  const sink = await startSink(config.sink, config.skipMx ? [] : mxHostAddresses(config));
  say(`Sink: ${sink.description} on 127.0.0.1:${sink.port}`);

  const measured = [
    ...(await mailroomRows(sink, config, baseDir)),
    ...(await smtpRows(sink, config, baseDir)),
    ...(await richRows(sink, config, baseDir)),
  ];
  await sink.close();
  if (isClosing()) {
    await cleanupAll(); // interrupted: the exit handler reports and exits
    return 130;
  }
  const order = [
    SQLITE,
    SQLITE_DKIM,
    SQLITE_MX,
    POSTGRES,
    SQLITE_BATCH,
    SQLITE_TEMPLATE,
    SQLITE_IDEMPOTENT,
    ...RICH,
    POSTFIX_RELAY,
    POSTFIX_OPENDKIM,
    CEILING,
  ];
  const rows = measured.sort((a, b) => order.indexOf(a.name) - order.indexOf(b.name));

  const found = ratios(rows);
  const report = {
    date: new Date().toISOString(),
    command: commandLine(),
    machine,
    config: { ...config, postgresUrl: redact(config.postgresUrl) },
    sink: sink.description,
    mailroomSettings: passedThroughSettings(),
    rows,
    ratios: found,
    targets: targets(rows, found),
  };
  process.stdout.write(renderReport(report));
  await writeReport(report, config.resultsFile);
  console.log(`Results written to ${path.relative(process.cwd(), config.resultsFile)}`);
  await cleanupAll();
  return rows.some((row) => row.status === "failed") ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  async (error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    await cleanupAll();
    process.exit(1);
  },
);
