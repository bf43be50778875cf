import { createRequire } from "node:module";
import type { XMLBuilder } from "fast-xml-parser";
import type { FastifyReply, FastifyRequest } from "fastify";

import { type Fields, NamedValues, type Resource, type Scalar } from "../model/resource.js";

export interface ResourceList {
  /** The XML wrapper element, e.g. `EmailMessages`, and the JSON array key, e.g. `messages`. */
  element: string;
  jsonKey: string;
  /** Paging fields (JSON keys first in the object, XML attributes on the wrapper). */
  paging: Fields | undefined;
  items: Resource[];
}

const JSON_FORMAT = Symbol("mailroom.json");
/** `.json` at the end of a path segment (the last one, or before a slash). */
const JSON_SEGMENT_SUFFIX = /\.json(?=\/|$)/g;

/**
 * Restcomm strips `.json` from any path segment and answers in JSON; remember that it did. Only
 * under /restcomm/: elsewhere (/openapi.json) a name is just a name.
 */
export function rewriteJsonSuffix(raw: { url?: string | undefined }): string {
  const url = raw.url ?? "/";
  if (!url.startsWith("/restcomm/")) return url;
  const queryAt = url.indexOf("?");
  const path = queryAt === -1 ? url : url.slice(0, queryAt);
  if (!path.includes(".json")) return url;
  // One replace rather than split, map and join: a third of the time, on every request.
  const stripped = path.replace(JSON_SEGMENT_SUFFIX, "");
  (raw as Record<symbol, boolean>)[JSON_FORMAT] = true;
  return queryAt === -1 ? stripped : stripped + url.slice(queryAt);
}

export function wantsJson(request: FastifyRequest): boolean {
  if ((request.raw as unknown as Record<symbol, boolean>)[JSON_FORMAT]) return true;
  const accept = request.headers.accept;
  return accept?.includes("json") ?? false;
}

export function snakeToPascal(name: string): string {
  return name.replace(/(^|_)([a-z])/g, (_match, _sep, letter: string) => letter.toUpperCase());
}

function jsonOf(resource: Resource): Record<string, unknown> {
  return resource.json ? resource.json() : toJsonObject(resource.fields);
}

/** JSON.stringify(jsonOf(resource)), written directly when the model can (resource.ts, compileJsonText). */
function jsonTextOf(resource: Resource): string {
  return resource.jsonText ? resource.jsonText() : JSON.stringify(jsonOf(resource));
}

export function toJsonObject(fields: Fields): Record<string, unknown> {
  const object: Record<string, unknown> = {};
  for (const [key, value] of fields) {
    if (value !== null) object[key] = value instanceof NamedValues ? value.entries : value;
  }
  return object;
}

function toXmlObject(fields: Fields): Record<string, unknown> {
  const object: Record<string, unknown> = {};
  for (const [key, value] of fields) {
    if (value instanceof NamedValues) {
      // Header and tag names need not be valid XML names: each pair is an element of its own.
      const item = snakeToPascal(key.replace(/s$/, ""));
      const pairs = Object.entries(value.entries).map(([name, text]) => ({ Name: name, Value: text }));
      object[snakeToPascal(key)] = { [item]: pairs };
    } else if (Array.isArray(value)) {
      const items = value.map((item: Readonly<Record<string, Scalar>>) => pascalKeys(item));
      object[snakeToPascal(key)] = { [snakeToPascal(key.replace(/s$/, ""))]: items };
    } else if (value !== null && typeof value === "object") {
      object[snakeToPascal(key)] = pascalKeys(value as Readonly<Record<string, Scalar>>);
    } else {
      object[snakeToPascal(key)] = value ?? "";
    }
  }
  return object;
}

function pascalKeys(record: Readonly<Record<string, Scalar>>): Record<string, Scalar> {
  const result: Record<string, Scalar> = {};
  for (const [key, value] of Object.entries(record)) result[snakeToPascal(key)] = value ?? "";
  return result;
}

/**
 * The XML builder, made at the first XML answer: clients that ask for JSON never load it. Required
 * (fast-xml-parser's CommonJS bundle, the same builder) so rendering stays synchronous; its ES module
 * entry also loads the parser, about 1.4 MB of heap that every major GC of the main thread marks.
 */
let builder: XMLBuilder | undefined;

function xml(): XMLBuilder {
  builder ??= new (
    createRequire(import.meta.url)("fast-xml-parser") as typeof import("fast-xml-parser")
  ).XMLBuilder({
    ignoreAttributes: false,
    attributeNamePrefix: "@_",
    suppressEmptyNode: true,
  });
  return builder;
}

function sendXml(reply: FastifyReply, body: Record<string, unknown>): FastifyReply {
  return reply.type("application/xml; charset=utf-8").send(xml().build({ RestcommResponse: body }));
}

/** JSON is serialised here, not by Fastify: the route's response schema documents it, it does not filter it. */
function sendJson(reply: FastifyReply, body: unknown): FastifyReply {
  return sendJsonText(reply, JSON.stringify(body));
}

function sendJsonText(reply: FastifyReply, text: string): FastifyReply {
  return reply.type("application/json; charset=utf-8").send(text);
}

export function sendResource(request: FastifyRequest, reply: FastifyReply, resource: Resource): FastifyReply {
  if (wantsJson(request)) return sendJsonText(reply, jsonTextOf(resource));
  return sendXml(reply, { [resource.element]: toXmlObject(resource.fields) });
}

export function sendList(request: FastifyRequest, reply: FastifyReply, list: ResourceList): FastifyReply {
  if (wantsJson(request)) {
    const items = list.items.map(jsonOf);
    if (list.paging === undefined) return sendJson(reply, items);
    return sendJson(reply, { ...toJsonObject(list.paging), [list.jsonKey]: items });
  }
  const wrapper: Record<string, unknown> = {};
  for (const [key, value] of list.paging ?? []) {
    // Restcomm's list attributes are lower case without separators: numpages, firstpageuri.
    if (value !== null && typeof value !== "object") wrapper[`@_${key.replaceAll("_", "")}`] = value;
  }
  const itemElement = list.items[0]?.element;
  if (itemElement !== undefined) wrapper[itemElement] = list.items.map((item) => toXmlObject(item.fields));
  return sendXml(reply, { [list.element]: wrapper });
}

/** Errors: `{status, code, message, more_info}` in JSON, `<RestException>` in XML. */
export function sendError(
  request: FastifyRequest,
  reply: FastifyReply,
  error: { status: number; code: number; message: string; moreInfo: string },
): FastifyReply {
  reply.code(error.status).header("x-mailroom-error-code", String(error.code));
  const fields: Fields = [
    ["status", error.status],
    ["code", error.code],
    ["message", error.message],
    ["more_info", error.moreInfo],
  ];
  if (wantsJson(request)) return sendJson(reply, toJsonObject(fields));
  return sendXml(reply, { RestException: toXmlObject(fields) });
}

/**
 * An answer rendered once: sent as these bytes, and stored as they are for an Idempotency-Key, so a
 * repeat gets exactly the same answer (src/http/idempotency.ts).
 */
export interface RenderedAnswer {
  status: number;
  contentType: string;
  body: string;
}

export function renderResource(request: FastifyRequest, resource: Resource): RenderedAnswer {
  if (wantsJson(request)) return jsonTextAnswer(jsonTextOf(resource));
  return xmlAnswer(xml().build({ RestcommResponse: { [resource.element]: toXmlObject(resource.fields) } }));
}

/**
 * Resources of different kinds in the order given (a batch's messages and errors): `{jsonKey: […]}`
 * in JSON; in XML the wrapper `element` with each item's own element, built one by one so that their
 * order is kept (one object would group the elements by name).
 */
export function renderMixedList(
  request: FastifyRequest,
  list: { element: string; jsonKey: string; items: Resource[] },
): RenderedAnswer {
  if (wantsJson(request)) return jsonAnswer({ [list.jsonKey]: list.items.map(jsonOf) });
  const items = list.items.map((item) => xml().build({ [item.element]: toXmlObject(item.fields) })).join("");
  return xmlAnswer(`<RestcommResponse><${list.element}>${items}</${list.element}></RestcommResponse>`);
}

/** An error as an error answer's body has it (`RestException` in XML), to be listed among resources. */
export function errorResource(error: { status: number; code: number; message: string; moreInfo: string }) {
  const fields: Fields = [
    ["status", error.status],
    ["code", error.code],
    ["message", error.message],
    ["more_info", error.moreInfo],
  ];
  return { element: "RestException", fields, json: () => toJsonObject(fields) } satisfies Resource;
}

export function sendRendered(reply: FastifyReply, answer: RenderedAnswer): FastifyReply {
  return reply.code(answer.status).type(answer.contentType).send(answer.body);
}

function jsonAnswer(body: unknown): RenderedAnswer {
  return jsonTextAnswer(JSON.stringify(body));
}

function jsonTextAnswer(body: string): RenderedAnswer {
  return { status: 200, contentType: "application/json; charset=utf-8", body };
}

function xmlAnswer(body: string): RenderedAnswer {
  return { status: 200, contentType: "application/xml; charset=utf-8", body };
}
