import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from "fastify";
import Fastify from "fastify";
import { API_VERSION } from "../model/paths.js";

const DOCS_PREFIX = "/docs";
/** @fastify/swagger-ui's routes under DOCS_PREFIX (5.2), answered here by the docs app. */
const DOCS_ROUTES = [
  "",
  "/static/index.html",
  "/static/swagger-initializer.js",
  "/json",
  "/yaml",
  "/static/*",
];
/** Headers of the docs app's answer that this server's own connection sets. */
const CONNECTION_HEADERS = new Set(["connection", "keep-alive", "date", "transfer-encoding"]);

/**
 * GET /openapi.json and the rendered docs (/docs), made at their first request. @fastify/swagger,
 * @fastify/swagger-ui and what they load (yaml, @fastify/static…) held about 2.2 MB of the main
 * thread's heap, which every major GC marked, in servers that are never asked for their document.
 *
 * Each route is recorded as it is registered (hidden ones aside: they are not in the document); the
 * first request for the document or the docs builds a Fastify instance of its own, the docs app, with
 * both plugins and every recorded route (their schemas, no handlers), and the docs routes here hand
 * their requests to it. Call before the routes to document are registered.
 */
export function registerApiDocs(app: FastifyInstance): void {
  const documented: RouteOptions[] = [];
  app.addHook("onRoute", (route) => {
    // HEAD routes are Fastify's copies of GET ones (the docs app makes its own); neither is documented.
    if (route.method === "HEAD" || (route.schema as { hide?: boolean } | undefined)?.hide === true) return;
    documented.push(route);
  });
  let docsApp: Promise<FastifyInstance> | undefined;
  const docs = () => {
    docsApp ??= buildDocsApp(documented).catch((error: unknown) => {
      docsApp = undefined;
      throw error;
    });
    return docsApp;
  };

  app.addHook("onClose", async () => {
    await (await docsApp?.catch(() => undefined))?.close();
  });

  const hidden = { schema: { tags: ["Service"], security: [], hide: true } };
  app.get("/openapi.json", hidden, async (_request, reply) =>
    reply.type("application/json; charset=utf-8").send((await docs()).swagger()),
  );
  for (const path of DOCS_ROUTES) {
    app.get(`${DOCS_PREFIX}${path}`, { schema: { hide: true } }, async (request, reply) =>
      forward(await docs(), request, reply),
    );
  }
}

async function buildDocsApp(routes: readonly RouteOptions[]): Promise<FastifyInstance> {
  const [{ default: swagger }, { default: swaggerUi }] = await Promise.all([
    import("@fastify/swagger"),
    import("@fastify/swagger-ui"),
  ]);
  const docsApp = Fastify({ routerOptions: { ignoreTrailingSlash: true } });
  // Its routes only describe: nothing is validated or serialised by their schemas.
  docsApp.setValidatorCompiler(() => () => true);
  docsApp.setSerializerCompiler(() => (data) => JSON.stringify(data));
  await docsApp.register(swagger, {
    openapi: {
      openapi: "3.1.0",
      info: {
        title: "Mailroom",
        version: API_VERSION,
        description:
          "The Restcomm Email API and Mailroom's additions. XML is the default answer; add .json to a resource's path (or send Accept: application/json) for JSON. Authenticate with HTTP Basic: Account SID (or email address) and AuthToken.",
      },
      components: {
        securitySchemes: {
          basicAuth: { type: "http", scheme: "basic" },
          metricsBearer: { type: "http", scheme: "bearer", description: "MAILROOM_METRICS_TOKEN" },
        },
      },
      security: [{ basicAuth: [] }],
    },
  });
  await docsApp.register(swaggerUi, { routePrefix: DOCS_PREFIX });
  for (const route of routes) {
    docsApp.route({
      method: route.method,
      url: route.url,
      schema: route.schema,
      config: route.config,
      handler: async () => undefined,
    });
  }
  await docsApp.ready();
  return docsApp;
}

/** The docs app's answer as this server's; a file it does not have is this server's 404. */
async function forward(docsApp: FastifyInstance, request: FastifyRequest, reply: FastifyReply) {
  const answer = await docsApp.inject({
    method: "GET",
    url: request.url,
    headers: request.headers,
  });
  if (answer.statusCode === 404) return reply.callNotFound();
  for (const [name, value] of Object.entries(answer.headers)) {
    if (value !== undefined && !CONNECTION_HEADERS.has(name)) reply.header(name, value);
  }
  reply.code(answer.statusCode);
  // No body (a redirect, 304 Not Modified): none sent, so no content type is added to the answer.
  return answer.rawPayload.length === 0 ? reply.send() : reply.send(answer.rawPayload);
}
