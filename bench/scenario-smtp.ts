/** The two SMTP rows: smtp-source straight into the sink (the ceiling), and through a private Postfix. */
import type { BenchConfig } from "./config.js";
import { startPostfix } from "./postfix.js";
import { groupPssKb, samplePeak } from "./procfs.js";
import type { Row } from "./row.js";
import { awaitDelivery, type Sink, waitForMessages } from "./sink.js";
import { runSmtpSource } from "./smtp-source.js";

export const CEILING = "SMTP ceiling";
export const POSTFIX_RELAY = "Postfix relay";

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

export async function postfixRelay(sink: Sink, config: BenchConfig, baseDir: string): Promise<Row> {
  log("starting a private Postfix instance");
  const postfix = await startPostfix(baseDir, sink.port);
  try {
    log(`Postfix ${postfix.version} on 127.0.0.1:${postfix.port} (master pid ${postfix.masterPid})`);
    const timeoutMs = config.deliveryTimeoutSeconds * 1000;
    await warmUp(sink, config, postfix.port, timeoutMs);
    await sink.reset();
    let processes = 0;
    const memory = samplePeak(() => {
      const group = groupPssKb(postfix.masterPid);
      processes = Math.max(processes, group.processes);
      return group.processes > 0 ? group.kb : undefined;
    }, 250);
    log(`smtp-source: ${config.messages} messages over ${config.connections} sessions`);
    const run = await runSmtpSource(postfix.port, sourceOptions(config));
    log(`submitted in ${((run.finishedAt - run.startedAt) / 1000).toFixed(1)} s; waiting for the sink`);
    const delivery = await awaitDelivery(sink, run.startedAt, config.messages, timeoutMs);
    const peakKb = memory.stop();
    if (!delivery.complete) {
      log(`only ${delivery.delivered} of ${config.messages} delivered in time:\n${postfix.logTail()}`);
    }
    return {
      ...rowFields(POSTFIX_RELAY, config, run, delivery, sink),
      peakRssMb: peakKb === undefined ? undefined : peakKb / 1024,
      rssNote: `sum of PSS over up to ${processes} Postfix processes`,
      details: {
        postfixVersion: postfix.version,
        deliveryConcurrency: postfix.concurrency,
      },
    };
  } finally {
    await postfix.stop();
  }
}
