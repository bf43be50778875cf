import assert from "node:assert/strict";
import { get, type IncomingMessage } from "node:http";
import { after, before, describe, test } from "node:test";
import { Validator } from "@seriousme/openapi-schema-validator";
import { Ajv } from "ajv";
import { EmailMessageModel } from "../src/model/email-message.js";
import { API, request, sendEmail, startMailroom, type TestServer } from "./helpers/mailroom.js";

describe("the OpenAPI document and the docs", () => {
  let server: TestServer;
  before(async () => {
    server = await startMailroom();
  });
  after(async () => {
    await server?.close();
  });

  test("/openapi.json is a valid OpenAPI 3.1 document that lists every route", async () => {
    const response = await request(server, "GET", "/openapi.json");
    assert.equal(response.status, 200);
    const document = response.json;
    assert.equal(document.openapi, "3.1.0");
    const result = await new Validator().validate(document);
    assert.equal(result.valid, true, JSON.stringify(result.errors, null, 2));

    // Every route the server answers (but the document itself and the docs UI's files) is in it.
    const documented = new Set<string>();
    for (const [path, operations] of Object.entries(document.paths as Record<string, object>)) {
      for (const method of Object.keys(operations)) documented.add(`${method.toUpperCase()} ${path}`);
    }
    const routes: string[] = [];
    for (const route of listRoutes(server)) {
      if (route.url === "/openapi.json" || route.url.startsWith("/docs") || route.method === "HEAD") continue;
      const path = route.url.replace(/:(\w+)/g, "{$1}");
      routes.push(`${route.method} ${path}`);
    }
    assert.ok(routes.length >= 12, `found ${routes.length} routes`);
    for (const route of routes) assert.ok(documented.has(route), `${route} is in the OpenAPI document`);

    const send = document.paths[`${API}/Accounts/{accountSid}/Email/Messages`].post;
    const bodyTypes = Object.keys(send.requestBody.content);
    assert.deepEqual(bodyTypes.sort(), [
      "application/json",
      "application/x-www-form-urlencoded",
      "multipart/form-data",
    ]);
    const params = send.requestBody.content["application/json"].schema.properties;
    for (const name of [
      "From",
      "To",
      "CC",
      "BCC",
      "Subject",
      "Body",
      "Html",
      "Text",
      "ReplyTo",
      "Headers",
      "Tags",
      "Attachments",
    ]) {
      assert.ok(params[name]?.description, `${name} is documented`);
    }
  });

  test("/docs renders the document from files served here", async () => {
    const page = await fetch(`${server.url}/docs/`);
    assert.equal(page.status, 200);
    const html = await page.text();
    assert.match(html, /swagger/i);
    for (const src of html.matchAll(/(?:src|href)="([^"]+)"/g)) {
      const url = src[1] as string;
      assert.ok(!/^https?:/.test(url), `${url} is served locally, not fetched from the internet`);
    }
  });

  test("a message as the API renders it matches the declared schema", async () => {
    const sent = await sendEmail(server, server.admin, {
      CC: "c@example.org",
      Tags: '{"a":"b"}',
      ReplyTo: "r@example.org",
    });
    assert.equal(sent.status, 200, sent.text);
    const validate = new Ajv({ strict: false }).compile(EmailMessageModel.schema);
    assert.equal(validate(sent.json), true, JSON.stringify(validate.errors));
    // And the schema is not vacuous: a field it does not declare fails it.
    assert.equal(validate({ ...sent.json, surprise: 1 }), false);
  });
});

describe("the docs, made at their first request (src/http/api-docs.ts)", () => {
  let server: TestServer;
  before(async () => {
    server = await startMailroom();
  });
  after(async () => {
    await server?.close();
  });

  test("first requests at once get one document; the docs UI's files answer as @fastify/swagger-ui does", async () => {
    const [document, docsJson, page] = await Promise.all([
      request(server, "GET", "/openapi.json"),
      request(server, "GET", "/docs/json"),
      fetch(`${server.url}/docs`),
    ]);
    assert.equal(document.status, 200);
    assert.equal(document.headers.get("content-type"), "application/json; charset=utf-8");
    assert.equal(docsJson.text, document.text);
    assert.equal(page.status, 200);
    assert.equal(page.headers.get("content-type"), "text/html; charset=utf-8");

    const yaml = await request(server, "GET", "/docs/yaml");
    assert.equal(yaml.headers.get("content-type"), "application/x-yaml");
    assert.match(yaml.text, /^openapi: 3\.1\.0$/m);

    const redirect = await fetch(`${server.url}/docs/static/index.html`, { redirect: "manual" });
    assert.equal(redirect.status, 302);
    assert.equal(redirect.headers.get("location"), "/docs/");

    const css = await fetch(`${server.url}/docs/static/swagger-ui.css`);
    assert.equal(css.status, 200);
    assert.equal(css.headers.get("content-type"), "text/css; charset=utf-8");
    const etag = css.headers.get("etag") ?? "";
    assert.ok(etag, "the file has an ETag");
    assert.equal(Number(css.headers.get("content-length")), (await css.arrayBuffer()).byteLength);
    // node:http, not fetch: fetch sends Cache-Control: no-cache with a conditional request.
    const unchanged = await new Promise<IncomingMessage>((resolve, reject) =>
      get(`${server.url}/docs/static/swagger-ui.css`, { headers: { "if-none-match": etag } }, (answer) => {
        answer.resume();
        resolve(answer);
      }).on("error", reject),
    );
    assert.equal(unchanged.statusCode, 304);
    assert.equal(unchanged.headers["content-type"], undefined);

    // A file the UI does not have is this server's 404, as any unknown path is.
    const missing = await request(server, "GET", "/docs/static/nothing-here.js");
    assert.equal(missing.status, 404);
    assert.equal(missing.headers.get("x-mailroom-error-code"), "20004");
  });
});

function listRoutes(server: TestServer): Array<{ method: string; url: string }> {
  return (server.mailroom.app as unknown as { registeredRoutes: Array<{ method: string; url: string }> })
    .registeredRoutes;
}
