import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from "fastify";
import { ApiError, describeErrorCode, type ErrorCodeInfo, moreInfoPath } from "../domain/errors.js";
import type { AccountService } from "../services/accounts.js";
import type { EmailMessageService } from "../services/email-messages.js";
import type { MailStore } from "../store/store.js";
import { isRejectedValue, isStoreUnavailable } from "../store/unavailable.js";
import { Unauthorized, WWW_AUTHENTICATE } from "./auth.js";
import { parseFormBody } from "./form.js";
import { rewriteJsonSuffix, sendError } from "./representation.js";
import { registerAccountRoutes } from "./routes/accounts.js";
import { registerEmailMessageRoutes } from "./routes/email-messages.js";

export interface HttpDeps {
  store: MailStore;
  accounts: AccountService;
  emails: EmailMessageService;
  logger: FastifyBaseLogger;
  bodyLimitBytes: number;
  logRequests: boolean;
}

/** Assembles the HTTP API: parsing, auth, routes and the one place errors become responses. */
export function createHttpApp(deps: HttpDeps): FastifyInstance {
  const app = Fastify({
    loggerInstance: deps.logger,
    bodyLimit: deps.bodyLimitBytes,
    logController: new LogController({ disableRequestLogging: !deps.logRequests }),
    rewriteUrl: (raw) => rewriteJsonSuffix(raw),
    // Restcomm URLs are case-sensitive and have no trailing slash rules worth enforcing.
    routerOptions: { ignoreTrailingSlash: true },
  });
  app.decorateRequest("actor", null as never);
  app.addContentTypeParser(
    "application/x-www-form-urlencoded",
    { parseAs: "buffer" },
    (_request, body, done) => done(null, parseFormBody(body as Buffer)),
  );
  // Only form and JSON bodies carry parameters; anything else gets a clear 415.
  app.removeContentTypeParser("text/plain");

  app.register(async (api) => {
    registerEmailMessageRoutes(api, deps);
    registerAccountRoutes(api, deps.accounts);
  });

  app.get("/healthz", async () => ({ status: "ok" }));
  app.get("/readyz", async (_request, reply) => {
    try {
      await deps.store.ping();
      return { status: "ok", store: deps.store.kind };
    } catch {
      return reply.code(503).send({ status: "unavailable", store: deps.store.kind });
    }
  });

  // Every error code's `more_info` link resolves here.
  app.get<{ Params: { page: string } }>("/restcomm/errors/:page", async (request, reply) => {
    const code = Number.parseInt(request.params.page, 10);
    const info = describeErrorCode(code);
    if (!info) throw new ApiError("RouteNotFound", `There is no Mailroom error code ${request.params.page}.`);
    return reply.type("text/html; charset=utf-8").send(errorPage(code, info));
  });

  app.setNotFoundHandler((request, reply) =>
    replyWithError(
      request,
      reply,
      new ApiError("RouteNotFound", `There is no resource at ${request.method} ${request.url}.`),
    ),
  );

  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error instanceof Unauthorized) {
      // Restcomm answers a failed login with an empty body and the realm challenge.
      return reply
        .code(401)
        .header("www-authenticate", WWW_AUTHENTICATE)
        .header("x-mailroom-error-code", String(error.code))
        .send();
    }
    return replyWithError(request, reply, toApiError(error, request.log));
  });

  return app;
}

function replyWithError(request: FastifyRequest, reply: FastifyReply, error: ApiError) {
  return sendError(request, reply, {
    status: error.status,
    code: error.code,
    message: error.message,
    moreInfo: moreInfoPath(error.code),
  });
}

/** Maps whatever was thrown to an API error; only a genuine server fault becomes a 500. */
function toApiError(error: FastifyError, log: FastifyBaseLogger): ApiError {
  if (error instanceof ApiError) return error;
  const status = error.statusCode;
  if (status === 413) {
    return new ApiError(
      "PayloadTooLarge",
      "The request body is larger than this server accepts (MAILROOM_BODY_LIMIT).",
    );
  }
  if (status === 415) {
    return new ApiError(
      "UnsupportedMediaType",
      `Content-Type "${error.message.replace(/^Unsupported Media Type: /, "")}" is not supported; send application/x-www-form-urlencoded or application/json.`,
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

function errorPage(code: number, info: ErrorCodeInfo): string {
  const words = info.name.replace(/([a-z])([A-Z])/g, "$1 $2");
  const status =
    info.status === null
      ? "A delivery outcome, shown in a message's error_code."
      : `HTTP status ${info.status}.`;
  return `<!doctype html><html><head><meta charset="utf-8"><title>Mailroom error ${code}</title></head><body><h1>${code}: ${words}</h1><p>${status} See docs/errors.md in the Mailroom repository for what causes it and how to fix it.</p></body></html>`;
}
