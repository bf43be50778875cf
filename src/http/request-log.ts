import { randomBytes } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";

/** The header that carries a request's id, both ways. */
export const REQUEST_ID_HEADER = "x-request-id";

/** What a client- or proxy-given id may be: it goes into a log line and a header unchanged. */
const VALID_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Fastify's genReqId: the X-Request-Id a client or load balancer sent, when it is a plain token (so a
 * request can be followed across the proxy's log and Mailroom's), else a new one: 12 random hex digits
 * chosen when the server starts, a dash and a counter in base 36 (`5f0c2a9e13b7-1k3`). Unique across
 * processes and restarts, unlike Fastify's own `req-1`, and cheaper per request than a UUID.
 */
export function requestIds(): (raw: IncomingMessage) => string {
  const prefix = `${randomBytes(6).toString("hex")}-`;
  let count = 0;
  return (raw) => {
    const given = raw.headers[REQUEST_ID_HEADER];
    if (typeof given === "string" && VALID_REQUEST_ID.test(given)) return given;
    count += 1;
    return prefix + count.toString(36);
  };
}

export interface RequestTrackingOptions {
  /** One debug line per request (MAILROOM_LOG_LEVEL debug or trace). */
  logRequests: boolean;
  /** Observes each request's duration by route (mailroom_http_request_duration_seconds). */
  observe(method: string, route: string, statusCode: number, ms: number): void;
}

/**
 * Every answer carries its request id (X-Request-Id): set by the first onRequest hook of the app (one
 * hook turn per request for that and the shutdown check, app.ts), before anything can refuse it.
 */
export function tagWithRequestId(request: FastifyRequest, reply: FastifyReply): void {
  reply.header(REQUEST_ID_HEADER, request.id);
}

/**
 * Every request is timed by route pattern for /metrics, and at debug level each one is logged once,
 * when answered. The line names no header and
 * no query string: credentials (Authorization) and whatever a client puts in a URL stay out of the log.
 */
export function trackRequests(app: FastifyInstance, options: RequestTrackingOptions): void {
  app.addHook("onResponse", (request, reply, done) => {
    // The route's pattern, not its URL: one series per route whatever the SIDs in the path.
    const route = request.routeOptions.url ?? "unmatched";
    const ms = reply.elapsedTime;
    options.observe(request.method, route, reply.statusCode, ms);
    if (options.logRequests) {
      const url = request.originalUrl;
      const queryAt = url.indexOf("?");
      request.log.debug(
        {
          method: request.method,
          path: queryAt === -1 ? url : url.slice(0, queryAt),
          route,
          status: reply.statusCode,
          ms: Math.round(ms * 10) / 10,
          ip: request.ip,
          // The account whose credentials were used (a SID, not a secret), when authenticated.
          actor: request.actor?.sid,
        },
        "request",
      );
    }
    done();
  });
}
