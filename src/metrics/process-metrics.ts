import { collectDefaultMetrics, Registry } from "prom-client";

let shared: Registry | undefined;

/**
 * prom-client's default metrics (CPU, memory, heap, GC, event-loop lag: nodejs_eventloop_lag_*), in a
 * registry of their own made once per process: they describe the process, which several Mailroom
 * instances may share (tests run many), and each collection starts an event-loop monitor and a GC
 * observer that are never stopped. Not prom-client's global registry: nothing else writes here.
 */
export function processMetrics(): Registry {
  if (!shared) {
    shared = new Registry();
    collectDefaultMetrics({ register: shared });
  }
  return shared;
}
