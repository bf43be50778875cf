import http from "node:http";
import https from "node:https";
import { isIP } from "node:net";
import { type WebhookErrorCode, WebhookErrorCodes } from "../domain/errors.js";
import { guardedLookup, refusedAmong } from "./address-guard.js";

/** How much of a receiver's answer is kept (for the Deliveries log and Notifications). */
export const KEPT_RESPONSE_BYTES = 1024;
/** How much of an answer is read at most; past this the connection is cut instead of read to its end. */
const READ_RESPONSE_BYTES = 64 * 1024;

export interface PosterOptions {
  /** MAILROOM_WEBHOOK_TIMEOUT_MS: the whole POST, connecting included. */
  timeoutMs: number;
  /** MAILROOM_WEBHOOK_ALLOW_PRIVATE. */
  allowPrivate: boolean;
  /** MAILROOM_WEBHOOK_HOST_CONCURRENCY: sockets per destination, the agents' bound. */
  hostConcurrency: number;
}

export interface PostResult {
  delivered: boolean;
  statusCode: number | null;
  latencyMs: number;
  /** The start of the answer's body (KEPT_RESPONSE_BYTES), as text XML can carry; null if none. */
  responseBody: string | null;
  /** Why it failed; null when delivered. */
  failure: { code: WebhookErrorCode; message: string } | null;
}

/**
 * POSTs webhook and StatusCallback bodies: keep-alive connections per destination (at most
 * hostConcurrency sockets each), every address checked by the guard as the socket connects (a name
 * that resolves somewhere else since the URL was given is refused then), no redirect followed (a 3xx
 * is a failure), the whole exchange bounded by the timeout, and only the start of an answer kept.
 */
export class WebhookPoster {
  private readonly lookup;
  private readonly httpAgent: http.Agent;
  private readonly httpsAgent: https.Agent;

  constructor(private readonly options: PosterOptions) {
    this.lookup = guardedLookup(options.allowPrivate);
    const agentOptions = {
      keepAlive: true,
      maxSockets: options.hostConcurrency,
      // Every socket a host may have is kept: with fewer, a busy receiver's connections were closed
      // and opened again all the time (connect and close were 2% of the main thread in the webhook row).
      maxFreeSockets: options.hostConcurrency,
      scheduling: "lifo" as const,
    };
    this.httpAgent = new http.Agent(agentOptions);
    this.httpsAgent = new https.Agent(agentOptions);
  }

  /**
   * POSTs `body`; never throws: every failure is a result. Once `abandon` is aborted, `close()` cuts
   * what is in flight (shutdown), and the result says it was abandoned.
   */
  async post(
    target: string,
    headers: Record<string, string>,
    body: string,
    abandon?: AbortSignal,
  ): Promise<PostResult> {
    const started = performance.now();
    const fail = (
      code: WebhookErrorCode,
      message: string,
      statusCode: number | null = null,
      responseBody: string | null = null,
    ): PostResult => ({
      delivered: false,
      statusCode,
      latencyMs: Math.round(performance.now() - started),
      responseBody,
      failure: { code, message },
    });
    let url: URL;
    try {
      url = new URL(target);
    } catch {
      return fail(WebhookErrorCodes.ReceiverUnreachable, "the URL is not valid");
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      return fail(WebhookErrorCodes.ReceiverUnreachable, `${url.protocol} URLs are not POSTed to`);
    }
    // Sockets skip the lookup for an IP address: the guard judges it here.
    const host = url.hostname.replace(/^\[|\]$/g, "");
    if (!this.options.allowPrivate && isIP(host) !== 0) {
      const refused = refusedAmong(host, [host]);
      if (refused) return fail(WebhookErrorCodes.ReceiverAddressRefused, refused.message);
    }
    const payload = Buffer.from(body, "utf8");
    return new Promise<PostResult>((resolve) => {
      let settled = false;
      let timedOut = false;
      // One timer for the whole exchange (cheaper than an AbortSignal per request: AbortSignal.timeout
      // and .any were 1.4% of the main thread in the webhook row).
      const timer = setTimeout(() => {
        timedOut = true;
        request.destroy(Object.assign(new Error("timed out"), { code: "EWEBHOOKTIMEOUT" }));
      }, this.options.timeoutMs);
      const finish = (result: PostResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(result);
      };
      const request = (url.protocol === "https:" ? https : http).request(url, {
        method: "POST",
        agent: url.protocol === "https:" ? this.httpsAgent : this.httpAgent,
        lookup: this.lookup,
        headers: {
          ...headers,
          "content-length": String(payload.byteLength),
          "user-agent": "Mailroom-Webhooks/1",
        },
      });
      request.on("error", (error: NodeJS.ErrnoException) => {
        if (timedOut) {
          finish(
            fail(WebhookErrorCodes.ReceiverTimeout, `no complete answer within ${this.options.timeoutMs} ms`),
          );
        } else if (abandon?.aborted) {
          finish(fail(WebhookErrorCodes.ReceiverUnreachable, "abandoned: the server is stopping"));
        } else if (error.code === "EWEBHOOKADDRESS") {
          finish(fail(WebhookErrorCodes.ReceiverAddressRefused, error.message));
        } else if (error.code === "ENOTFOUND" || error.code === "EAI_AGAIN" || error.code === "ENODATA") {
          finish(fail(WebhookErrorCodes.ReceiverHostNotFound, `${host} does not resolve (${error.code})`));
        } else {
          finish(fail(WebhookErrorCodes.ReceiverUnreachable, describeError(error)));
        }
      });
      request.on("response", (response) => {
        const kept: Buffer[] = [];
        let keptBytes = 0;
        let readBytes = 0;
        response.on("data", (chunk: Buffer) => {
          readBytes += chunk.byteLength;
          if (keptBytes < KEPT_RESPONSE_BYTES) {
            const part = chunk.subarray(0, KEPT_RESPONSE_BYTES - keptBytes);
            kept.push(part);
            keptBytes += part.byteLength;
          }
          // A receiver streaming an endless answer gets its connection cut, not read forever.
          if (readBytes > READ_RESPONSE_BYTES) {
            response.destroy();
            done();
          }
        });
        const done = () => {
          const status = response.statusCode ?? 0;
          const text = keptBytes > 0 ? xmlSafeText(Buffer.concat(kept).toString("utf8")) : null;
          if (status >= 200 && status < 300) {
            finish({
              delivered: true,
              statusCode: status,
              latencyMs: Math.round(performance.now() - started),
              responseBody: text,
              failure: null,
            });
          } else if (status >= 300 && status < 400) {
            finish(
              fail(
                WebhookErrorCodes.ReceiverRedirected,
                `HTTP ${status}: redirects are not followed; point the URL at the final address`,
                status,
                text,
              ),
            );
          } else {
            finish(
              fail(
                WebhookErrorCodes.ReceiverError,
                `HTTP ${status} ${response.statusMessage ?? ""}`.trim(),
                status,
                text,
              ),
            );
          }
        };
        response.on("end", done);
        response.on("error", () => {
          if (timedOut)
            finish(
              fail(
                WebhookErrorCodes.ReceiverTimeout,
                `no complete answer within ${this.options.timeoutMs} ms`,
                response.statusCode ?? null,
              ),
            );
          else
            finish(
              fail(
                WebhookErrorCodes.ReceiverUnreachable,
                "the connection broke during the answer",
                response.statusCode ?? null,
              ),
            );
        });
      });
      request.end(payload);
    });
  }

  /** Closes every connection, those in use included: what is in flight ends at once (shutdown). */
  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}

function describeError(error: NodeJS.ErrnoException): string {
  return error.code ? `${error.code}: ${error.message}` : error.message;
}

// What XML 1.0 cannot carry (the Notifications resource renders as XML), and lone surrogates.
const NOT_XML =
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
  /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

function xmlSafeText(text: string): string {
  return text.replace(NOT_XML, "\ufffd");
}
