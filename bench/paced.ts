/**
 * Latency at a fixed offered rate: an open-loop generator that starts request i at t0 + i/rate, whatever
 * the server is doing, over a pool of keep-alive connections. Latency is measured from the request's
 * scheduled start, so a server that falls behind is charged for the wait (no coordinated omission).
 *
 * Not autocannon: its rate limiter sends each connection's whole per-second quota back to back at the
 * start of every second, which measures bursts of N concurrent requests rather than a steady rate.
 */
import http from "node:http";
import { bodyMaker, type HttpRequestSpec } from "./message.js";

export interface PacedResult {
  offered: number;
  completed: number;
  ok: number;
  non2xx: number;
  errors: number;
  /** Achieved completion rate over the run, requests per second. */
  achievedRate: number;
  p50Ms: number | undefined;
  p99Ms: number | undefined;
  maxMs: number | undefined;
  /** The scheduler's worst lateness in starting a request (a sign the generator itself was busy). */
  maxStartLagMs: number;
}

function percentile(sorted: number[], p: number): number | undefined {
  if (sorted.length === 0) return undefined;
  const index = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.max(0, index)];
}

export function pacedLoad(
  baseUrl: string,
  request: HttpRequestSpec,
  options: { rate: number; seconds: number; connections: number },
): Promise<PacedResult> {
  const url = new URL(`${baseUrl}${request.path}`);
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.connections });
  const nextBody = bodyMaker(request.body);
  const total = options.rate * options.seconds;
  const intervalMs = 1000 / options.rate;
  const latencies: number[] = [];
  let started = 0;
  let finished = 0;
  let ok = 0;
  let non2xx = 0;
  let errors = 0;
  let maxStartLagMs = 0;

  return new Promise((resolve) => {
    const t0 = performance.now() + 20;
    const done = () => {
      finished++;
      if (finished < total) return;
      const elapsedS = (performance.now() - t0) / 1000;
      agent.destroy();
      latencies.sort((a, b) => a - b);
      resolve({
        offered: total,
        completed: ok + non2xx,
        ok,
        non2xx,
        errors,
        achievedRate: (ok + non2xx) / elapsedS,
        p50Ms: percentile(latencies, 50),
        p99Ms: percentile(latencies, 99),
        maxMs: latencies[latencies.length - 1],
        maxStartLagMs,
      });
    };
    const fire = (scheduledAt: number) => {
      const body = nextBody();
      const headers = {
        ...request.headers,
        ...request.headersFor?.(),
        "content-length": String(body.length),
      };
      let settled = false;
      const settle = (outcome: "ok" | "non2xx" | "error") => {
        if (settled) return;
        settled = true;
        if (outcome === "ok") ok++;
        else if (outcome === "non2xx") non2xx++;
        else errors++;
        done();
      };
      const req = http.request(
        {
          agent,
          host: url.hostname,
          port: url.port,
          path: url.pathname,
          method: "POST",
          headers,
          timeout: 30_000,
        },
        (res) => {
          res.resume();
          res.once("end", () => {
            latencies.push(performance.now() - scheduledAt);
            const status = res.statusCode ?? 0;
            settle(status >= 200 && status < 300 ? "ok" : "non2xx");
          });
        },
      );
      req.once("timeout", () => req.destroy(new Error("timed out")));
      req.once("error", () => settle("error"));
      req.end(body);
    };
    const tick = () => {
      const at = performance.now();
      while (started < total && t0 + started * intervalMs <= at) {
        const scheduledAt = t0 + started * intervalMs;
        maxStartLagMs = Math.max(maxStartLagMs, at - scheduledAt);
        started++;
        fire(scheduledAt);
      }
      if (started < total) setTimeout(tick, Math.max(0, t0 + started * intervalMs - performance.now()));
    };
    setTimeout(tick, 20);
  });
}
