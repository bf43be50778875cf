import type { FastifyInstance } from "fastify";
import Type from "typebox";
import { ApiError } from "../domain/errors.js";
import { ErrorBody, NoQuery } from "../http/route-schemas.js";
import { BearerToken } from "./bearer-token.js";
import type { MailroomMetrics, ScrapeSources } from "./metrics.js";

export interface MetricsRouteOptions {
  metrics: MailroomMetrics;
  sources: ScrapeSources;
  /** MAILROOM_METRICS_TOKEN; undefined leaves /metrics open. */
  token: string | undefined;
}

/** The challenge of a 401 from /metrics: RFC 6750's scheme, a realm of its own (not Restcomm's Basic one). */
export const METRICS_WWW_AUTHENTICATE = 'Bearer realm="mailroom-metrics"';

/**
 * `GET /metrics`: Prometheus' text format, on the API's port, outside /restcomm/ (no Basic auth: a
 * scraper has no account). With MAILROOM_METRICS_TOKEN set it needs that token as a Bearer token.
 */
export async function metricsRoute(app: FastifyInstance, options: MetricsRouteOptions): Promise<void> {
  const { metrics, sources } = options;
  const bearer = options.token === undefined ? undefined : new BearerToken(options.token);
  app.get(
    "/metrics",
    {
      schema: {
        tags: ["Service"],
        summary: "Prometheus metrics",
        description:
          "Counters, gauges and histograms in Prometheus' text format (docs/events.md, Metrics and logs). When MAILROOM_METRICS_TOKEN is set, send it as Authorization: Bearer <token>.",
        security: bearer ? [{ metricsBearer: [] }] : [],
        querystring: NoQuery,
        produces: ["text/plain"],
        response: {
          200: Type.String({ description: "Prometheus text exposition format 0.0.4." }),
          401: ErrorBody,
        },
      },
    },
    async (request, reply) => {
      if (bearer) {
        const check = bearer.check(request.headers.authorization);
        if (check !== "ok") {
          reply.header("www-authenticate", METRICS_WWW_AUTHENTICATE);
          throw check === "missing"
            ? new ApiError(
                "MetricsTokenMissing",
                "GET /metrics needs the header Authorization: Bearer <token>, with the token this server was given in MAILROOM_METRICS_TOKEN (Prometheus: authorization.credentials in the scrape config).",
              )
            : new ApiError(
                "MetricsTokenWrong",
                "The Bearer token is not this server's MAILROOM_METRICS_TOKEN; send the token configured there.",
              );
        }
      }
      const text = await metrics.render(sources);
      return reply.type(metrics.contentType).send(text);
    },
  );
}
