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

export async function smtpCeiling(sink: Sink, config: BenchConfig): Promise<Row> {
  const source = {
    messages: config.messages,
    sessions: config.connections,
    bodyBytes: config.messageBytes,
    timeoutMs: config.deliveryTimeoutSeconds * 1000,
  };
  if (config.warmup > 0) {
    log(`warm-up: ${config.warmup} messages`);
    await sink.reset();
    await runSmtpSource(sink.port, { ...source, messages: config.warmup });
    await waitForMessages(sink, config.warmup, 10_000);
  }
  await sink.reset();
  log(`smtp-source: ${config.messages} messages over ${config.connections} sessions`);
  const run = await runSmtpSource(sink.port, source);
  const delivery = await awaitDelivery(sink, run.startedAt, config.messages, 10_000);
  return {
    name: CEILING,
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

export async function postfixRelay(sink: Sink, config: BenchConfig, baseDir: string): Promise<Row> {
  log("starting a private Postfix instance");
  const postfix = await startPostfix(baseDir, sink.port);
  try {
    log(`Postfix ${postfix.version} on 127.0.0.1:${postfix.port} (master pid ${postfix.masterPid})`);
    const source = {
      messages: config.messages,
      sessions: config.connections,
      bodyBytes: config.messageBytes,
      timeoutMs: config.deliveryTimeoutSeconds * 1000,
    };
    const timeoutMs = config.deliveryTimeoutSeconds * 1000;
    if (config.warmup > 0) {
      log(`warm-up: ${config.warmup} messages`);
      await sink.reset();
      await runSmtpSource(postfix.port, { ...source, messages: config.warmup });
      await waitForMessages(sink, config.warmup, timeoutMs);
    }
    await sink.reset();
    let processes = 0;
    const memory = samplePeak(() => {
      const group = groupPssKb(postfix.masterPid);
      processes = Math.max(processes, group.processes);
      return group.processes > 0 ? group.kb : undefined;
    }, 250);
    log(`smtp-source: ${config.messages} messages over ${config.connections} sessions`);
    const run = await runSmtpSource(postfix.port, source);
    log(`submitted in ${((run.finishedAt - run.startedAt) / 1000).toFixed(1)} s; waiting for the sink`);
    const delivery = await awaitDelivery(sink, run.startedAt, config.messages, timeoutMs);
    const peakKb = memory.stop();
    if (!delivery.complete) {
      log(`only ${delivery.delivered} of ${config.messages} delivered in time:\n${postfix.logTail()}`);
    }
    return {
      name: POSTFIX_RELAY,
      status: "ok",
      messages: config.messages,
      acceptedPerSec: config.messages / ((run.finishedAt - run.startedAt) / 1000),
      deliveredPerSec: delivery.perSec,
      delivered: delivery.delivered,
      deliveryComplete: delivery.complete,
      deliverySeconds: delivery.seconds,
      peakRssMb: peakKb === undefined ? undefined : peakKb / 1024,
      rssNote: `sum of PSS over up to ${processes} Postfix processes`,
      ...sizeAndDuplicates(sink),
      details: {
        postfixVersion: postfix.version,
        deliveryConcurrency: postfix.concurrency,
      },
    };
  } finally {
    await postfix.stop();
  }
}
