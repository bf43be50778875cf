/**
 * Postfix's smtp-sink as the bench's sink. It is started with -c, which prints running counters
 * ("sess=.. quit=.. mesg=N", separated by carriage returns) each time a message ends; the wrapper reads
 * them as they arrive. It cannot see Message-IDs, so duplicates and sizes are not counted with it.
 */
import { readFileSync } from "node:fs";
import { freePort, LOOPBACK, waitForPort } from "./ports.js";
import { spawnTracked, untilReady } from "./proc.js";
import type { Sink, SinkCounts } from "./sink.js";
import { now } from "./sink.js";

export const SMTP_SINK = "/usr/sbin/smtp-sink";

/** smtp-sink refuses to run as root without -u; use the postfix user (present whenever smtp-sink is). */
function userArgs(): string[] {
  if (process.getuid?.() !== 0) return [];
  const passwd = readFileSync("/etc/passwd", "utf8");
  return ["-u", /^postfix:/m.test(passwd) ? "postfix" : "nobody"];
}

export async function startSmtpSink(): Promise<Sink> {
  const port = await freePort();
  let total = 0;
  let baseline = 0;
  let firstAt: number | undefined;
  let lastAt: number | undefined;
  let partial = "";
  const proc = spawnTracked("smtp-sink", SMTP_SINK, ["-c", ...userArgs(), `${LOOPBACK}:${port}`, "1024"], {
    onStdout: (text) => {
      const lines = (partial + text).split(/[\r\n]/);
      partial = lines.pop() ?? "";
      const last = lines.filter((line) => line.includes("mesg=")).pop();
      const match = last ? /mesg=(\d+)/.exec(last) : null;
      if (!match) return;
      const count = Number(match[1]);
      if (count === total) return;
      const at = now();
      if (total === baseline) firstAt = at;
      lastAt = at;
      total = count;
    },
  });
  await untilReady(proc, waitForPort(port, 5000, "smtp-sink"));
  return {
    kind: "smtp-sink",
    description: `Postfix's smtp-sink (${SMTP_SINK} -c)`,
    port,
    inspectsMessages: false,
    counts(): SinkCounts {
      return { messages: total - baseline, bytes: 0, duplicates: 0, signed: 0, firstAt, lastAt };
    },
    async reset() {
      baseline = total;
      firstAt = undefined;
      lastAt = undefined;
    },
    // smtp-sink throws every message away unseen: nothing to keep.
    samples: async () => [],
    close: () => proc.stop(),
  };
}
