import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from "fastify";
import Type from "typebox";
import { ApiError, describeErrorCode, moreInfoPath } from "../domain/errors.js";
import { quoteInput } from "../domain/quote.js";
import type { DomainService } from "../domains/domain-service.js";
import type { ErasureService } from "../lifecycle/erasure.js";
import type { MailroomMetrics, ScrapeSources } from "../metrics/metrics.js";
import { metricsRoute } from "../metrics/metrics-route.js";
import type { AccountService } from "../services/accounts.js";
import type { EmailMessageService } from "../services/email-messages.js";
import type { TemplateService } from "../services/templates.js";
import type { WebhookService } from "../services/webhooks.js";
import type { MailStore } from "../store/types.js";
import { isQueryTimeout, isRejectedValue, isStoreFull, isStoreUnavailable } from "../store/unavailable.js";
import { registerApiDocs } from "./api-docs.js";
import { authenticate, TooManyFailedLogins, Unauthorized, WWW_AUTHENTICATE } from "./auth.js";
import type { AuthThrottle } from "./auth-throttle.js";
import { BodyBudget } from "./body-budget.js";
import { errorPage } from "./error-pages.js";
import { parseFormBody } from "./form.js";
import { addJsonBodyParser } from "./json-body.js";
import { rewriteJsonSuffix, sendError } from "./representation.js";
import { requestIds, tagWithRequestId, trackRequests } from "./request-log.js";
import { accountRoutes } from "./routes/accounts.js";
import { domainRoutes } from "./routes/domains.js";
import { emailMessageRoutes } from "./routes/email-messages.js";
import { erasureRoutes } from "./routes/erasures.js";
import { eventRoutes } from "./routes/events.js";
import { notificationRoutes } from "./routes/notifications.js";
import { templateRoutes } from "./routes/templates.js";
import { usageRecordRoutes } from "./routes/usage-records.js";
import { webhookRoutes } from "./routes/webhooks.js";
import { drainUnreadBody } from "./unread-body.js";
import { validationError } from "./validation-errors.js";

export interface HttpDeps {
  store: MailStore;
  accounts: AccountService;
  /** Failed authentications, counted per address and user name (auth-throttle.ts). */
  authThrottle: AuthThrottle;
  emails: EmailMessageService;
  webhooks: WebhookService;
  /** Email templates: the resource, and rendering for sends. */
  templates: TemplateService;
  domains: DomainService;
  /** POST …/Email/Erasures (issue 16). */
  erasures: ErasureService;
  logger: FastifyBaseLogger;
  bodyLimitBytes: number;
  bodyMemoryBytes: number;
  bodyWaitMs: number;
  maxMessageBytes: number;
  logRequests: boolean;
  /** Fastify's trustProxy: the proxies whose X-Forwarded-For names the client (false: none). */
  trustProxy: string[] | false;
  metrics: MailroomMetrics;
  /** Where /metrics reads the store's queues and the relay's connections at scrape time. */
  scrapeSources: ScrapeSources;
  /** MAILROOM_METRICS_TOKEN. */
  metricsToken: string | undefined;
}

/**
 * Assembles the HTTP API: parsing, the authenticated context with the Restcomm routes, the OpenAPI
 * document and its rendered docs, and the one place errors become responses.
 */
export async function createHttpApp(deps: HttpDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.logger,
    bodyLimit: deps.bodyLimitBytes,
    // The client address (throttling) comes from X-Forwarded-For only when a trusted proxy sent it.
    trustProxy: deps.trustProxy,
    // Fastify's own request logging writes two lines per request at info; trackRequests writes one at debug.
    logController: new LogController({ disableRequestLogging: true }),
    genReqId: requestIds(),
    // Fastify's own answer while closing is a bare 503 without a Mailroom code: see refuseWhileClosing.
    return503OnClosing: false,
    rewriteUrl: (raw) => rewriteJsonSuffix(raw),
    // Restcomm URLs are case-sensitive and have no trailing slash rules worth enforcing.
    routerOptions: { ignoreTrailingSlash: true },
    ajv: {
      // Fastify's defaults would drop unknown parameters and turn 123 into "123" silently:
      // a parameter Mailroom does not know, or of the wrong type, is refused instead.
      customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false },
    },
    schemaErrorFormatter: (errors, context) =>
      Object.assign(new Error("invalid request"), { validation: errors, validationContext: context }),
  });
  // Response schemas document the answers (OpenAPI); they do not shape them. Answers are rendered from
  // the resource models (representation.ts), so Fastify need not compile a serializer per schema:
  // those serializers were never used yet held about 5 MB of heap that every major GC marks.
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  // Every route, as registered: the OpenAPI test checks that each one is documented.
  const routes: Array<{ method: string; url: string }> = [];
  app.decorate("registeredRoutes", routes);
  app.addHook("onRoute", (route) => {
    for (const method of [route.method].flat()) routes.push({ method, url: route.url });
  });
  app.decorateRequest("actor", null as never);
  app.decorateRequest("account", null as never);
  app.decorateRequest("accountAncestors", null as never);
  app.decorateRequest("uploads", null as never);
  addJsonBodyParser(app);
  app.addContentTypeParser(
    "application/x-www-form-urlencoded",
    { parseAs: "buffer" },
    (_request, body, done) => done(null, parseFormBody(body as Buffer)),
  );
  // Only form, JSON and (for sends) multipart bodies carry parameters; anything else gets a clear 415.
  app.removeContentTypeParser("text/plain");
  trackRequests(app, {
    logRequests: deps.logRequests,
    observe: (method, route, statusCode, ms) => deps.metrics.httpRequest(method, route, statusCode, ms),
  });
  // The first onRequest hook, so that every answer (a refusal while closing, a 401) carries the request id.
  refuseWhileClosing(app);
  // Before any body is read, and after authentication (the onRequest hook of the API's context).
  const budget = new BodyBudget({
    budgetBytes: deps.bodyMemoryBytes,
    waitMs: deps.bodyWaitMs,
    bodyLimitBytes: deps.bodyLimitBytes,
  });
  app.addHook("preParsing", budget.hook);
  app.decorate("bodyBudget", budget);

  // Before any route: a context takes its error handler from its parent when it is registered.
  app.setNotFoundHandler((request, reply) =>
    replyWithError(
      request,
      reply,
      new ApiError("RouteNotFound", `There is no resource at ${request.method} ${quoteInput(request.url)}.`),
    ),
  );

  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error instanceof Unauthorized) {
      // Restcomm answers a failed login with an empty body and the realm challenge.
      drainUnreadBody(request, reply);
      return reply
        .code(401)
        .header("www-authenticate", WWW_AUTHENTICATE)
        .header("x-mailroom-error-code", String(error.code))
        .send();
    }
    if (error instanceof TooManyFailedLogins) reply.header("retry-after", String(error.retryAfterSeconds));
    return replyWithError(request, reply, toApiError(error, request));
  });

  // The OpenAPI document and /docs, made at their first request from the routes registered from here on.
  registerApiDocs(app);

  // Every Restcomm route needs credentials: one hook on this context, not an option on each route.
  await app.register(async (api) => {
    api.addHook("onRequest", authenticate(deps.accounts, deps.authThrottle));
    await api.register(emailMessageRoutes, {
      store: deps.store,
      emails: deps.emails,
      templates: deps.templates,
      limits: { maxMessageBytes: deps.maxMessageBytes, bodyLimitBytes: deps.bodyLimitBytes },
    });
    await api.register(accountRoutes, deps.accounts);
    await api.register(webhookRoutes, { store: deps.store, webhooks: deps.webhooks });
    await api.register(eventRoutes, { store: deps.store });
    await api.register(notificationRoutes, { store: deps.store });
    await api.register(usageRecordRoutes, { store: deps.store });
    await api.register(templateRoutes, deps.templates);
    await api.register(domainRoutes, { store: deps.store, domains: deps.domains });
    await api.register(erasureRoutes, { erasures: deps.erasures });
  });

  await app.register(metricsRoute, {
    metrics: deps.metrics,
    sources: deps.scrapeSources,
    token: deps.metricsToken,
  });

  const status = Type.Object({
    status: Type.String(),
    store: Type.Optional(Type.String()),
    reason: Type.Optional(
      Type.String({ description: "why the store is not ready: unreachable or disk full" }),
    ),
  });
  const open = { tags: ["Service"], security: [] };
  app.get("/healthz", { schema: { ...open, summary: "Liveness", response: { 200: status } } }, async () => ({
    status: "ok",
  }));
  app.get(
    "/readyz",
    {
      schema: {
        ...open,
        summary: "Readiness: the store answers and can write",
        response: { 200: status, 503: status },
      },
    },
    async (_request, reply) => {
      try {
        await deps.store.ping();
        return { status: "ok", store: deps.store.kind };
      } catch (error) {
        const reason = isStoreFull(error) ? "disk full" : "unreachable";
        return reply.code(503).send({ status: "unavailable", store: deps.store.kind, reason });
      }
    },
  );

  // Every error code's `more_info` link resolves here (error-pages.ts: the code's line of docs/errors.md).
  app.get<{ Params: { page: string } }>(
    "/restcomm/errors/:page",
    {
      schema: {
        ...open,
        summary: "What an error code means",
        params: Type.Object({ page: Type.String({ description: "{code}.html" }) }),
        produces: ["text/html"],
        response: { 200: Type.String() },
      },
    },
    async (request, reply) => {
      const code = Number.parseInt(request.params.page, 10);
      const info = describeErrorCode(code);
      if (!info)
        throw new ApiError(
          "RouteNotFound",
          `There is no Mailroom error code ${quoteInput(request.params.page)}.`,
        );
      return reply.type("text/html; charset=utf-8").send(errorPage(code, info));
    },
  );

  return app;
}

/**
 * Once the server is stopping, a request that arrives on a connection still open (keep-alive) gets a
 * coded 503 and `Connection: close`, so the client retries elsewhere; requests already under way
 * finish (app.close() waits for them), and their answers say `Connection: close` too. Without that
 * their connections stayed open for the keep-alive timeout (72 s), holding up the stop, until the
 * client sent its next request into a connection about to be cut.
 */
function refuseWhileClosing(app: FastifyInstance): void {
  let closing = false;
  app.addHook("preClose", (done) => {
    closing = true;
    done();
  });
  app.decorate("isStopping", () => closing);
  app.addHook("onSend", (_request, reply, payload, done) => {
    if (closing) reply.header("connection", "close");
    done(null, payload);
  });
  // The app's first onRequest hook: the request id and the shutdown check in one hook turn.
  app.addHook("onRequest", (request, reply, done) => {
    tagWithRequestId(request, reply);
    if (!closing) {
      done();
      return;
    }
    reply.header("connection", "close").header("retry-after", "1");
    done(
      new ApiError(
        "ShuttingDown",
        "This Mailroom server is stopping; nothing was accepted. Retry: another node, or this one once restarted, takes the request.",
      ),
    );
  });
}

function replyWithError(request: FastifyRequest, reply: FastifyReply, error: ApiError) {
  drainUnreadBody(request, reply);
  return sendError(request, reply, {
    status: error.status,
    code: error.code,
    message: error.message,
    moreInfo: moreInfoPath(error.code),
  });
}

/** Maps whatever was thrown to an API error; only a genuine server fault becomes a 500. */
function toApiError(error: FastifyError, request: FastifyRequest): ApiError {
  const log = request.log;
  if (error instanceof ApiError) return error;
  if (error.validation) return validationError(error.validation, error.validationContext ?? "body", request);
  const status = error.statusCode;
  if (status === 413) {
    return new ApiError(
      "PayloadTooLarge",
      `The request body is larger than this server accepts: at most ${request.routeOptions.bodyLimit ?? "the configured"} bytes (MAILROOM_BODY_LIMIT).`,
    );
  }
  if (status === 415) {
    const sent = request.headers["content-type"];
    return new ApiError(
      "UnsupportedMediaType",
      `${sent ? `Content-Type ${quoteInput(sent)}` : "A body without a Content-Type"} is not supported here; send application/x-www-form-urlencoded or application/json (or multipart/form-data to send attachments).`,
    );
  }
  if (status !== undefined && status >= 400 && status < 500) {
    return new ApiError("MalformedBody", `The request could not be read: ${error.message}`);
  }
  if (isRejectedValue(error)) {
    return new ApiError(
      "MalformedBody",
      "The request contains a value the database cannot store (such as a NUL character).",
    );
  }
  if (isStoreFull(error)) {
    log.error({ err: error }, "store full");
    return new ApiError(
      "StoreFull",
      "The message store is out of disk space; nothing was accepted or changed. Retry later: the operator has to free space.",
    );
  }
  if (isQueryTimeout(error)) {
    log.warn({ err: error }, "query timeout");
    return new ApiError(
      "QueryTimeout",
      "The store did not answer within the query timeout (MAILROOM_QUERY_TIMEOUT_MS); nothing was changed. Retry shortly; narrow a list with StartTime, EndTime or Status.",
    );
  }
  if (isStoreUnavailable(error)) {
    log.error({ err: error }, "store unavailable");
    return new ApiError(
      "StoreUnavailable",
      "The message store is unreachable right now; nothing was accepted. Retry shortly.",
    );
  }
  log.error({ err: error }, "unexpected error");
  return new ApiError("InternalError", "Mailroom hit an unexpected error; it has been logged.");
}
