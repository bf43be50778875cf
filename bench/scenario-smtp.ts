/**
 * The SMTP rows: smtp-source straight into the sink (the ceiling), through a private Postfix, and through
 * a private Postfix that has every message signed by a private OpenDKIM (a milter).
 */
import type { BenchConfig } from "./config.js";
import { checkSignatures, VERIFIED_SAMPLES } from "./dkim-check.js";
import { type OpenDkimInstance, startOpenDkim } from "./opendkim.js";
import { startPostfix } from "./postfix.js";
import { cpuSeconds, groupPssKb, pssKb, samplePeak } from "./procfs.js";
import type { Row } from "./row.js";
import { awaitDelivery, type Sink, waitForMessages } from "./sink.js";
import { runSmtpSource, SOURCE_SENDER } from "./smtp-source.js";

export const CEILING = "SMTP ceiling";
export const POSTFIX_RELAY = "Postfix relay";
export const POSTFIX_OPENDKIM = "Postfix relay with OpenDKIM";

const log = (line: string) => console.error(`  ${line}`);

function sizeAndDuplicates(sink: Sink): Pick<Row, "avgMessageBytes" | "duplicates"> {
  const counts = sink.counts();
  if (!sink.inspectsMessages || counts.messages === 0) return {};
  return { avgMessageBytes: Math.round(counts.bytes / counts.messages), duplicates: counts.duplicates };
}

type SourceRun = Awaited<ReturnType<typeof runSmtpSource>>;
type Delivery = Awaited<ReturnType<typeof awaitDelivery>>;

/** smtp-source's options for a row: the run's message count, sessions, body size and timeout. */
function sourceOptions(config: BenchConfig) {
  return {
    messages: config.messages,
    sessions: config.connections,
    bodyBytes: config.messageBytes,
    timeoutMs: config.deliveryTimeoutSeconds * 1000,
  };
}

/** Sends the warm-up messages through `port` and waits until the sink has them all. */
async function warmUp(sink: Sink, config: BenchConfig, port: number, timeoutMs: number): Promise<void> {
  if (config.warmup <= 0) return;
  log(`warm-up: ${config.warmup} messages`);
  await sink.reset();
  await runSmtpSource(port, { ...sourceOptions(config), messages: config.warmup });
  await waitForMessages(sink, config.warmup, timeoutMs);
}

/** The fields every SMTP row shares, from the submission run and what reached the sink. */
function rowFields(name: string, config: BenchConfig, run: SourceRun, delivery: Delivery, sink: Sink): Row {
  return {
    name,
    status: "ok",
    messages: config.messages,
    acceptedPerSec: config.messages / ((run.finishedAt - run.startedAt) / 1000),
    deliveredPerSec: delivery.perSec,
    delivered: delivery.delivered,
    deliveryComplete: delivery.complete,
    deliverySeconds: delivery.seconds,
    ...sizeAndDuplicates(sink),
  };
}

export async function smtpCeiling(sink: Sink, config: BenchConfig): Promise<Row> {
  await warmUp(sink, config, sink.port, 10_000);
  await sink.reset();
  log(`smtp-source: ${config.messages} messages over ${config.connections} sessions`);
  const run = await runSmtpSource(sink.port, sourceOptions(config));
  const delivery = await awaitDelivery(sink, run.startedAt, config.messages, 10_000);
  return rowFields(CEILING, config, run, delivery, sink);
}

export function postfixRelay(sink: Sink, config: BenchConfig, baseDir: string): Promise<Row> {
  return postfixRow(POSTFIX_RELAY, sink, config, baseDir);
}

/**
 * The Postfix relay row with OpenDKIM signing every message (RSA-2048, relaxed/relaxed) as a milter: the
 * fair comparison for Mailroom's DKIM row. Fails, rather than giving a number, unless the mail was signed.
 */
export async function postfixOpenDkimRelay(sink: Sink, config: BenchConfig, baseDir: string): Promise<Row> {
  log("starting a private OpenDKIM instance");
  const domain = SOURCE_SENDER.slice(SOURCE_SENDER.indexOf("@") + 1);
  const opendkim = await startOpenDkim(baseDir, domain);
  try {
    log(
      `${opendkim.version} on 127.0.0.1:${opendkim.port} (pid ${opendkim.pid}), signing mail From ${domain} ` +
        `(s=${opendkim.selector}, RSA-2048, relaxed/relaxed)`,
    );
    return await postfixRow(POSTFIX_OPENDKIM, sink, config, baseDir, opendkim);
  } catch (error) {
    log(`OpenDKIM's last output:\n${opendkim.tail() || "(none)"}`);
    throw error;
  } finally {
    await opendkim.stop();
  }
}

/** A private Postfix relaying to the sink (through `opendkim` as its milter, when given), measured. */
async function postfixRow(
  name: string,
  sink: Sink,
  config: BenchConfig,
  baseDir: string,
  opendkim?: OpenDkimInstance,
): Promise<Row> {
  log("starting a private Postfix instance");
  const postfix = await startPostfix(baseDir, sink.port, opendkim?.postfixSettings);
  try {
    log(`Postfix ${postfix.version} on 127.0.0.1:${postfix.port} (master pid ${postfix.masterPid})`);
    const timeoutMs = config.deliveryTimeoutSeconds * 1000;
    await warmUp(sink, config, postfix.port, timeoutMs);
    // The signing row keeps a few of its messages whole, to verify their signatures afterwards.
    await sink.reset(opendkim ? VERIFIED_SAMPLES : 0);
    let processes = 0;
    const memory = samplePeak(() => {
      const group = groupPssKb(postfix.masterPid);
      processes = Math.max(processes, group.processes);
      const milterKb = opendkim ? (pssKb(opendkim.pid) ?? 0) : 0;
      return group.processes > 0 ? group.kb + milterKb : undefined;
    }, 250);
    const milterCpuBefore = opendkim ? cpuSeconds(opendkim.pid) : undefined;
    log(`smtp-source: ${config.messages} messages over ${config.connections} sessions`);
    const run = await runSmtpSource(postfix.port, sourceOptions(config));
    log(`submitted in ${((run.finishedAt - run.startedAt) / 1000).toFixed(1)} s; waiting for the sink`);
    const delivery = await awaitDelivery(sink, run.startedAt, config.messages, timeoutMs);
    const peakKb = memory.stop();
    const milterCpuAfter = opendkim ? cpuSeconds(opendkim.pid) : undefined;
    if (!delivery.complete) {
      log(`only ${delivery.delivered} of ${config.messages} delivered in time:\n${postfix.logTail()}`);
    }
    const details: NonNullable<Row["details"]> = {
      postfixVersion: postfix.version,
      deliveryConcurrency: postfix.concurrency,
    };
    if (opendkim) {
      const check = await checkSignatures(sink, delivery.delivered, opendkim);
      log(`${check.signedAtSink} messages signed at the sink; ${check.verifiedSamples} samples verified`);
      details.opendkimVersion = opendkim.version;
      details.signedAtSink = check.signedAtSink;
      details.verifiedSamples = check.verifiedSamples;
      if (milterCpuBefore !== undefined && milterCpuAfter !== undefined && delivery.delivered > 0) {
        const ms = ((milterCpuAfter - milterCpuBefore) * 1000) / delivery.delivered;
        details.opendkimCpuMsPerMessage = Math.round(ms * 1000) / 1000;
      }
    }
    return {
      ...rowFields(name, config, run, delivery, sink),
      peakRssMb: peakKb === undefined ? undefined : peakKb / 1024,
      rssNote: `sum of PSS over up to ${processes} Postfix processes${opendkim ? " and OpenDKIM" : ""}`,
      details,
    };
  } finally {
    await postfix.stop();
  }
}
