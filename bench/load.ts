/** Throughput load: autocannon posting a fixed number of emails over N keep-alive connections. */
import autocannon, { type Request } from "autocannon";
import { bodyMaker, type HttpRequestSpec } from "./message.js";
import { now } from "./sink.js";

export interface LoadResult {
  startedAt: number;
  finishedAt: number;
  ok: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  /** Count per HTTP status code. */
  statusCodes: Record<string, number>;
}

export async function postEmails(
  baseUrl: string,
  request: HttpRequestSpec,
  options: { amount: number; connections: number },
): Promise<LoadResult> {
  const startedAt = now();
  const { body, headersFor } = request;
  const nextBody = bodyMaker(body);
  const instance = autocannon({
    url: `${baseUrl}${request.path}`,
    method: "POST",
    headers: request.headers,
    // A fixed request is serialised once; a made body or made headers make autocannon rebuild each one.
    ...(typeof body === "string" && !headersFor
      ? { body }
      : {
          requests: [
            {
              setupRequest: (each: Request) => ({
                ...each,
                headers: headersFor ? { ...each.headers, ...headersFor() } : each.headers,
                body: nextBody(),
              }),
            },
          ],
        }),
    connections: Math.min(options.connections, options.amount),
    amount: options.amount,
    timeout: 30,
  });
  // autocannon notices that `amount` is reached only on its one-second ticker, so the time it resolves
  // is rounded up to that tick: the last response's own arrival is the end of the run.
  let lastResponseAt = startedAt;
  instance.on("response", () => {
    lastResponseAt = now();
  });
  const result = await instance;
  const finishedAt = lastResponseAt;
  const statusCodes: Record<string, number> = {};
  for (const [code, stats] of Object.entries(result.statusCodeStats)) statusCodes[code] = stats.count;
  return {
    startedAt,
    finishedAt,
    ok: result["2xx"],
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    statusCodes,
  };
}
