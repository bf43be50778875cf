import { appendFileSync } from "node:fs";

/**
 * BENCH_PERF_CONTROL: the control FIFO of a `perf record` attached to the Mailroom server
 * (`perf record -D -1 --control fifo:PATH -g -p PID`, started disabled). The bench enables recording
 * for each throughput run only, so the profile leaves out start-up, warm-up and the latency run
 * (docs/performance.md, "Knobs"). Writing blocks until perf has opened the FIFO.
 */
export function perfWindow(command: "enable" | "disable"): void {
  const fifo = process.env.BENCH_PERF_CONTROL;
  if (fifo) appendFileSync(fifo, `${command}\n`);
}
