/**
 * One Mailroom row: a fresh store, one account, `mailroom serve` relaying to the sink; then a warm-up, the
 * throughput run (accepted/s and delivered/s), the latency run at a fixed offered rate, and optionally (plain
 * rows only) the accepted/s run with a large backlog queued.
 */
import { mkdir } from "node:fs/promises";
import path from "node:path";
import type { BenchConfig } from "./config.js";
import { checkSignatures, type SigningKey, VERIFIED_SAMPLES } from "./dkim-check.js";
import { postEmails } from "./load.js";
import {
  type Credentials,
  createAccount,
  type LogTally,
  type MailroomProcess,
  type StoreTarget,
  startMailroom,
} from "./mailroom.js";
import { ENVELOPE, type HttpRequestSpec, sendEmailRequest } from "./message.js";
import { BATCH_SIZE, batchRequest } from "./message-batch.js";
import { checkReplay, idempotentRequest } from "./message-idempotent.js";
import { ATTACHMENT_BYTES, attachmentRequest, htmlTextRequest } from "./message-rich.js";
import {
  checkRenderedSamples,
  createTemplate,
  RENDERED_SAMPLES,
  templateRequest,
} from "./message-template.js";
import { pacedLoad } from "./paced.js";
import { perfWindow } from "./perf-window.js";
import { freePort } from "./ports.js";
import { cpuSecondsOfCommand } from "./procfs.js";
import type { Payload, Row } from "./row.js";
import { awaitDelivery, type Sink, waitForMessages } from "./sink.js";
import { startWebhookReceiver, type WebhookReceiver } from "./webhook-receiver.js";

const log = (line: string) => console.error(`  ${line}`);

export interface MailroomScenario {
  name: string;
  payload: Payload;
  /** Builds the store target inside `dir` (and may register cleanup for it). */
  target(dir: string): Promise<StoreTarget>;
  /**
   * With a webhook subscribed to every event type (issue 13), answered by a receiver in this process:
   * the row then also says how long every event took to arrive.
   */
  webhook?: boolean;
  /**
   * With a sending domain for the From address's domain (issue 15): its RSA-2048 key is active from
   * creation, so every message is DKIM-signed where it is composed (the relay thread).
   */
  dkim?: boolean;
  /** Extra setup of the row (the direct-to-MX row's DNS, scenario-mx.ts): settings, requests, cleanup. */
  prepare?(sink: Sink): Promise<RowSetup>;
}

/** What a row's own setup adds: server settings, the requests it sends, and what to stop after it. */
export interface RowSetup {
  settings: Record<string, string>;
  request(credentials: Credentials): HttpRequestSpec;
  close(): Promise<void>;
}

/** `templateSid`: the template the templated row's requests name (made once its server runs). */
function requestFor(
  payload: Payload,
  credentials: Credentials,
  config: BenchConfig,
  templateSid: string | undefined,
): HttpRequestSpec {
  switch (payload) {
    case "plain":
      return sendEmailRequest(credentials, config.messageBytes);
    case "template":
      if (templateSid === undefined) throw new Error("the templated row has no template");
      return templateRequest(credentials, templateSid);
    case "idempotent":
      return idempotentRequest(credentials, config.messageBytes);
    case "html+text":
      return htmlTextRequest(credentials);
    case "attachment":
      return attachmentRequest(credentials, ATTACHMENT_BYTES);
    case "batch":
      return batchRequest(credentials, config.messageBytes, BATCH_SIZE);
  }
}

/** How a row's runs are sized. */
interface Shape {
  messages: number;
  warmup: number;
  /** Why the row has no latency run, when it has none. */
  noLatency?: string;
  /** Messages in each request (the batch row), else 1. */
  perRequest: number;
}

/**
 * The attachment row sends BENCH_ATTACHMENT_MESSAGES (and a tenth of that as warm-up) and has no latency
 * run: a 100 KB message costs the server many times a plain one, so BENCH_MESSAGES of them would outlast
 * the delivery timeout, and BENCH_RATE would offer more than it accepts, so its p50/p99 would measure
 * the requests queued in the generator.
 */
function shapeFor(payload: Payload, config: BenchConfig): Shape {
  if (payload === "batch") {
    // The plain row's messages, BATCH_SIZE to a request; a request's latency is not a message's.
    return {
      messages: Math.ceil(config.messages / BATCH_SIZE) * BATCH_SIZE,
      warmup: Math.ceil(config.warmup / BATCH_SIZE) * BATCH_SIZE,
      perRequest: BATCH_SIZE,
      noLatency: `a request carries ${BATCH_SIZE} messages: its latency is not a message's`,
    };
  }
  if (payload !== "attachment") return { messages: config.messages, warmup: config.warmup, perRequest: 1 };
  const messages = config.attachmentMessages;
  return {
    messages,
    warmup: Math.min(config.warmup, Math.ceil(messages / 10)),
    noLatency: `${config.latencyRate} req/s offered would be more than this row accepts`,
    perRequest: 1,
  };
}

export async function mailroomRow(
  scenario: MailroomScenario,
  sink: Sink,
  config: BenchConfig,
  baseDir: string,
): Promise<Row> {
  const dir = path.join(baseDir, scenario.name.replace(/\W+/g, "-").replace(/^-|-$/g, "").toLowerCase());
  await mkdir(dir, { recursive: true });
  const target = await scenario.target(dir);
  const credentials = await createAccount(target, "bench@example.com");
  const setup = await scenario.prepare?.(sink);
  const timeoutMs = config.deliveryTimeoutSeconds * 1000;
  const shape = shapeFor(scenario.payload, config);
  const row: Row = { name: scenario.name, status: "ok", payload: scenario.payload, messages: shape.messages };
  if (scenario.webhook) row.webhook = true;
  const per = shape.perRequest;
  if (per > 1) row.messagesPerRequest = per;
  if (scenario.dkim) row.dkim = true;
  if (scenario.prepare) row.mx = { domains: config.mxDomains, hosts: config.mxHosts };

  let duplicates = 0;
  /** Starts a new phase at the sink, keeping the duplicate count of the phase that ends. */
  const newPhase = async (samples = 0) => {
    duplicates += sink.counts().duplicates;
    await sink.reset(samples);
  };
  /** Takes the process's peak memory and log tally into the row, then stops it. */
  const retire = async (server: MailroomProcess) => {
    const peak = server.peakRssKb();
    if (peak !== undefined) row.peakRssMb = Math.max(peak / 1024, row.peakRssMb ?? 0);
    row.logs = mergeLogs(row.logs, server.logs());
    await server.stop();
  };

  if (config.profileDir) await mkdir(config.profileDir, { recursive: true });
  const profile = config.profileDir
    ? path.join(config.profileDir, `${path.basename(dir)}-${new Date().toISOString().replace(/[:.]/g, "-")}`)
    : undefined;
  const receiver = scenario.webhook ? await startWebhookReceiver() : undefined;
  // The receiver listens on loopback, which webhooks may reach only when allowed.
  const settings: Record<string, string> = receiver ? { MAILROOM_WEBHOOK_ALLOW_PRIVATE: "1" } : {};
  Object.assign(settings, setup?.settings);
  let mailroom: MailroomProcess | undefined;
  try {
    mailroom = await startMailroom(target, sink.port, profile, settings);
  } catch (error) {
    await setup?.close();
    throw error;
  }
  if (profile) log(`the server's CPU profiles (one per thread) go to ${profile}`);
  try {
    log(`Mailroom pid ${mailroom.pid} at ${mailroom.baseUrl}`);
    const templateSid =
      scenario.payload === "template"
        ? await createTemplate(mailroom.baseUrl, credentials, config.messageBytes)
        : undefined;
    if (templateSid) log(`account template ${templateSid}`);
    const request = setup
      ? setup.request(credentials)
      : requestFor(scenario.payload, credentials, config, templateSid);
    if (receiver) await subscribe(mailroom.baseUrl, credentials, receiver);
    const signingKey = scenario.dkim ? await createSendingDomain(mailroom.baseUrl, credentials) : undefined;
    if (shape.warmup > 0) {
      log(`warm-up: ${requests(shape.warmup, per)}`);
      const warm = await postEmails(mailroom.baseUrl, request, {
        amount: shape.warmup / per,
        connections: config.connections,
      });
      mailroom.assertAlive();
      await waitForMessages(sink, warm.ok * per, timeoutMs);
      // The warm-up's events too, so that none of them is counted as the throughput run's.
      if (receiver) await awaitEvents(receiver, Date.now(), warm.ok * per, timeoutMs);
    }

    // The signing and templated rows keep a few of their messages whole, to check them afterwards.
    await newPhase(
      signingKey && sink.inspectsMessages ? VERIFIED_SAMPLES : templateSid ? RENDERED_SAMPLES : 0,
    );
    perfWindow("enable");
    const cpuBefore = mailroom.cpuSeconds();
    const threadsBefore = mailroom.threadCpuSeconds();
    const syscallsBefore = mailroom.ioSyscalls();
    const harnessBefore = process.cpuUsage();
    const databaseBefore = target.databaseUrl ? cpuSecondsOfCommand("postgres") : undefined;
    log(`throughput: ${requests(shape.messages, per)} over ${config.connections} connections`);
    const traceStart = Date.now();
    const traceBase = sink.counts().messages;
    const trace = process.env.BENCH_TRACE
      ? setInterval(
          () => log(`  t=${Date.now() - traceStart} ms delivered ${sink.counts().messages - traceBase}`),
          500,
        )
      : undefined;
    const load = await postEmails(mailroom.baseUrl, request, {
      amount: shape.messages / per,
      connections: config.connections,
    });
    mailroom.assertAlive();
    // Messages, not requests (a batch's 200 says its messages were accepted).
    const accepted = load.ok * per;
    row.acceptedPerSec = accepted / ((load.finishedAt - load.startedAt) / 1000);
    row.http = {
      non2xx: load.non2xx,
      errors: load.errors,
      timeouts: load.timeouts,
      statusCodes: load.statusCodes,
    };
    log(
      `accepted ${accepted} in ${((load.finishedAt - load.startedAt) / 1000).toFixed(1)} s` +
        (accepted < shape.messages ? ` (non-2xx ${load.non2xx}, errors ${load.errors})` : "") +
        "; waiting for the sink",
    );
    const delivery = await awaitDelivery(sink, load.startedAt, accepted, timeoutMs);
    clearInterval(trace);
    row.deliveredPerSec = delivery.perSec;
    row.delivered = delivery.delivered;
    row.deliveryComplete = delivery.complete;
    row.deliverySeconds = delivery.seconds;
    perfWindow("disable");
    const cpuAfter = mailroom.cpuSeconds();
    const threads = threadSplit(mailroom.pid, threadsBefore, mailroom.threadCpuSeconds());
    const syscallsAfter = mailroom.ioSyscalls();
    const harness = process.cpuUsage(harnessBefore);
    const databaseAfter = target.databaseUrl ? cpuSecondsOfCommand("postgres") : undefined;
    if (cpuBefore !== undefined && cpuAfter !== undefined && delivery.delivered > 0) {
      // CPU spent per message on accepting and delivering it, by the server and by this harness
      // (autocannon and the sink share the machine's cores with the server).
      const perMessage = (ms: number) => Math.round((ms / delivery.delivered) * 1000) / 1000;
      row.details = {
        serverCpuMsPerMessage: perMessage((cpuAfter - cpuBefore) * 1000),
        // Which thread is the limit: the main one (HTTP and the delivery worker), the two busiest
        // others (the store thread and the relay thread; Linux names them all "node"), and the rest
        // (GC helpers, libuv's pool).
        serverCpuMsPerMessageByThread: `main ${perMessage(threads.main * 1000)}, busiest others ${threads.busiestOthers
          .map((seconds) => perMessage(seconds * 1000))
          .join(" and ")}, rest ${perMessage(threads.rest * 1000)}`,
        harnessCpuMsPerMessage: perMessage((harness.user + harness.system) / 1000),
      };
      if (databaseBefore !== undefined && databaseAfter !== undefined) {
        // The PostgreSQL server's processes (any client's, so run nothing else against it meanwhile).
        row.details.databaseCpuMsPerMessage = perMessage((databaseAfter - databaseBefore) * 1000);
      }
      if (syscallsBefore !== undefined && syscallsAfter !== undefined) {
        // Socket reads and writes dominate the main thread's time that is not JavaScript.
        row.details.serverIoSyscallsPerMessage = perMessage(syscallsAfter - syscallsBefore);
      }
    }
    if (signingKey && sink.inspectsMessages) {
      // A row whose mail was not signed fails rather than giving a number.
      const check = await checkSignatures(sink, delivery.delivered, signingKey);
      log(`${check.signedAtSink} messages signed at the sink; ${check.verifiedSamples} samples verified`);
      row.details = { ...row.details, ...check };
    }
    if (receiver) row.webhooks = await awaitEvents(receiver, load.startedAt, delivery.delivered, timeoutMs);
    const counts = sink.counts();
    if (sink.inspectsMessages && counts.messages > 0) {
      row.avgMessageBytes = Math.round(counts.bytes / counts.messages);
    }
    if (!delivery.complete) log(`only ${delivery.delivered} of ${accepted} delivered within the timeout`);
    if (templateSid || scenario.payload === "idempotent") {
      // A feature row whose sends did not all arrive, or arrived wrong, fails rather than giving a number.
      if (accepted < shape.messages || !delivery.complete) {
        throw new Error(`${accepted} of ${shape.messages} accepted, ${delivery.delivered} at the sink`);
      }
    }
    if (templateSid) {
      if (!sink.inspectsMessages) throw new Error("the sink does not read messages: cannot check the text");
      const checked = await checkRenderedSamples(sink, delivery.delivered);
      log(`${checked} samples carry the rendered Subject and text`);
      row.details = { ...row.details, renderedSamplesChecked: checked };
    }
    if (scenario.payload === "idempotent") {
      const replay = await checkReplay(mailroom.baseUrl, request, sink, timeoutMs);
      log(replay);
      row.details = { ...row.details, replayCheck: replay };
    }

    if (shape.noLatency) {
      log(`no latency run: ${shape.noLatency}`);
      row.latencyNotRun = shape.noLatency;
    } else {
      await newPhase();
      row.latency = await latencyRun(mailroom, request, sink, config);
    }
    await new Promise((resolve) => setTimeout(resolve, 500)); // give stray duplicates a moment to arrive
    await newPhase();
    if (sink.inspectsMessages) row.duplicates = duplicates;

    // The backlog target is about the plain load; 100,000 rich messages would take gigabytes.
    if (config.backlog > 0 && scenario.payload === "plain" && !scenario.prepare) {
      await retire(mailroom);
      mailroom = undefined;
      // Relay down: everything stays queued. Retries held back (see BenchConfig.backlogRetries).
      const holdRetries = { MAILROOM_RETRY_BASE_MS: "3600000", MAILROOM_RETRY_MAX_MS: "3600000" };
      mailroom = await startMailroom(
        target,
        await freePort(),
        undefined,
        config.backlogRetries ? {} : holdRetries,
      );
      row.backlog = await backlogRun(mailroom, request, config);
    }
  } finally {
    if (mailroom) await retire(mailroom);
    await receiver?.close();
    await setup?.close();
  }
  row.rssNote = "VmHWM of the Mailroom process";
  return row;
}

/** "N requests", or "N messages in M requests" when a request carries several. */
function requests(messages: number, perRequest: number): string {
  return perRequest === 1
    ? `${messages} requests`
    : `${messages} messages in ${messages / perRequest} requests`;
}

/** Latency at the offered rate, from an empty queue; then waits until its messages are delivered. */
async function latencyRun(
  mailroom: MailroomProcess,
  request: HttpRequestSpec,
  sink: Sink,
  config: BenchConfig,
): Promise<NonNullable<Row["latency"]>> {
  log(`latency: ${config.latencyRate} req/s offered for ${config.latencySeconds} s`);
  const paced = await pacedLoad(mailroom.baseUrl, request, {
    rate: config.latencyRate,
    seconds: config.latencySeconds,
    connections: config.connections,
  });
  mailroom.assertAlive();
  const drained = await waitForMessages(sink, paced.ok, config.deliveryTimeoutSeconds * 1000);
  mailroom.assertAlive();
  if (!drained) log(`the latency run's ${paced.ok} messages were not all delivered within the timeout`);
  return {
    offeredRate: config.latencyRate,
    achievedRate: paced.achievedRate,
    p50Ms: paced.p50Ms,
    p99Ms: paced.p99Ms,
    maxMs: paced.maxMs,
    ok: paced.ok,
    non2xx: paced.non2xx,
    errors: paced.errors,
    maxStartLagMs: paced.maxStartLagMs,
  };
}

function mergeLogs(a: LogTally | undefined, b: LogTally): LogTally {
  if (!a) return b;
  return {
    warn: a.warn + b.warn,
    error: a.error + b.error,
    samples: [...a.samples, ...b.samples].slice(0, 5),
  };
}

/** Accepted/s on an empty queue, then again once `backlog` messages are queued (the relay is down). */
async function backlogRun(
  mailroom: MailroomProcess,
  request: HttpRequestSpec,
  config: BenchConfig,
): Promise<NonNullable<Row["backlog"]>> {
  const amount = Math.min(config.messages, config.backlog);
  const post = async (count: number) => {
    const result = await postEmails(mailroom.baseUrl, request, {
      amount: count,
      connections: config.connections,
    });
    mailroom.assertAlive();
    if (result.ok < count) {
      log(
        `backlog: only ${result.ok} of ${count} accepted (non-2xx ${result.non2xx}, errors ${result.errors})`,
      );
    }
    return result;
  };
  // Warm up with as many requests as are measured, so the failing first attempts of the worker are in
  // their steady state before the "empty" measurement starts.
  log(`backlog: warm-up, ${amount} requests (relay down)`);
  await post(amount);
  log(`backlog: ${amount} requests with an (almost) empty queue (relay down)`);
  const empty = await post(amount);
  const fill = config.backlog - amount;
  if (fill > 0) {
    log(`backlog: queueing ${fill} more`);
    await post(fill);
  }
  log(`backlog: ${amount} requests with ${config.backlog} queued`);
  const full = await post(amount);
  const rate = (run: typeof empty) => run.ok / ((run.finishedAt - run.startedAt) / 1000);
  return {
    queued: config.backlog,
    emptyAcceptedPerSec: rate(empty),
    backlogAcceptedPerSec: rate(full),
    ratio: rate(full) / rate(empty),
    non2xx: empty.non2xx + full.non2xx,
    errors: empty.errors + full.errors,
  };
}

/** CPU seconds spent between two readings by the main thread, the two busiest others and the rest. */
function threadSplit(pid: number, before: Map<number, number>, after: Map<number, number>) {
  const spent = [...after].map(([tid, seconds]) => ({ tid, seconds: seconds - (before.get(tid) ?? 0) }));
  const main = spent.find((t) => t.tid === pid)?.seconds ?? 0;
  const others = spent.filter((t) => t.tid !== pid).sort((a, b) => b.seconds - a.seconds);
  const busiestOthers = others.slice(0, 2).map((t) => t.seconds);
  const rest = others.slice(2).reduce((sum, t) => sum + t.seconds, 0);
  return { main, busiestOthers, rest };
}

/**
 * Creates the sending domain of the bench's From address, through the API: its key signs from now on.
 * Returns that key's selector and the DKIM record Mailroom says to publish, to verify signatures with.
 */
async function createSendingDomain(baseUrl: string, credentials: Credentials): Promise<SigningKey> {
  const domain = ENVELOPE.From.slice(ENVELOPE.From.indexOf("@") + 1);
  const response = await fetch(`${baseUrl}/restcomm/2012-04-24/Accounts/${credentials.sid}/Domains.json`, {
    method: "POST",
    headers: {
      authorization: `Basic ${Buffer.from(`${credentials.sid}:${credentials.authToken}`).toString("base64")}`,
      "content-type": "application/x-www-form-urlencoded",
    },
    body: new URLSearchParams({ DomainName: domain }),
  });
  if (!response.ok)
    throw new Error(`creating the domain failed: ${response.status} ${await response.text()}`);
  const created = (await response.json()) as {
    dkim_keys: Array<{ selector: string; state: string }>;
    dns_records: Array<{ purpose: string; selector?: string; value: string }>;
  };
  log(
    `sending domain ${domain}: DKIM key ${created.dkim_keys.map((k) => `${k.selector} (${k.state})`).join(", ")}`,
  );
  const active = created.dkim_keys.find((k) => k.state === "active");
  const record = created.dns_records.find((r) => r.purpose === "dkim" && r.selector === active?.selector);
  if (!active || !record) throw new Error(`domain ${domain} has no active DKIM key with a record to publish`);
  return { domain, selector: active.selector, record: record.value };
}

/** Subscribes the receiver to every event type of the bench account, through the API. */
async function subscribe(
  baseUrl: string,
  credentials: Credentials,
  receiver: WebhookReceiver,
): Promise<void> {
  const response = await fetch(`${baseUrl}/restcomm/2012-04-24/Accounts/${credentials.sid}/Webhooks.json`, {
    method: "POST",
    headers: {
      authorization: `Basic ${Buffer.from(`${credentials.sid}:${credentials.authToken}`).toString("base64")}`,
      "content-type": "application/x-www-form-urlencoded",
    },
    body: new URLSearchParams({ Url: receiver.url }),
  });
  if (!response.ok)
    throw new Error(`creating the webhook failed: ${response.status} ${await response.text()}`);
  log(`webhook on every event type to ${receiver.url}`);
}

/**
 * Waits until the receiver has every event of the throughput run (accepted and sent: two per message
 * with one recipient), counting from the first submission as delivered/s does.
 */
async function awaitEvents(
  receiver: WebhookReceiver,
  startedAt: number,
  messages: number,
  timeoutMs: number,
): Promise<NonNullable<Row["webhooks"]>> {
  const expected = messages * 2;
  const deadline = Date.now() + timeoutMs;
  while (receiver.counts().events < expected && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const { events, posts, lastAt } = receiver.counts();
  const seconds = ((lastAt || Date.now()) - startedAt) / 1000;
  if (events < expected) log(`only ${events} of ${expected} webhook events arrived within the timeout`);
  receiver.reset();
  return { expected, events, posts, seconds, eventsPerSec: events / seconds };
}
