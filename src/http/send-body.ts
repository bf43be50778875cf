import type { FastifyReply, FastifyRequest } from "fastify";
import { ApiError, type ErrorKind } from "../domain/errors.js";
import { quoteInput } from "../domain/quote.js";
import type { AttachmentUpload } from "../model/email-message.js";
import { duplicateKeyError } from "./json-body.js";
import { findDuplicateKey } from "./json-keys.js";
import { MultipartBody } from "./multipart.js";

declare module "fastify" {
  interface FastifyRequest {
    /** The file parts of a multipart send (field `Attachment`), in order. */
    uploads: AttachmentUpload[];
  }
}

// Restcomm checks the required parameters in this order and names the first one missing.
const REQUIRED: ReadonlyArray<readonly [string, ErrorKind]> = [
  ["From", "FromMissing"],
  ["To", "ToMissing"],
  ["Body", "BodyMissing"],
  ["Subject", "SubjectMissing"],
];

const NO_UPLOADS: AttachmentUpload[] = [];

/** Parameters whose form and multipart value is a JSON object written as text (and an example of one). */
const JSON_TEXT_PARAMS: Record<string, string> = {
  Headers: '{"X-Campaign":"spring"}',
  Tags: '{"X-Campaign":"spring"}',
  TemplateData: '{"name":"Ada"}',
};

/**
 * Runs before the route schema checks a send: brings form, multipart and JSON bodies to one shape
 * (multipart file parts set aside as uploads; Headers and Tags parsed from their JSON text in form
 * bodies; a JSON null is an absent parameter), then checks the required parameters in Restcomm's
 * order with Restcomm's messages, so `From can not be null.` reads as it always did.
 */
export function prepareSendBody(
  request: FastifyRequest,
  _reply: FastifyReply,
  done: (error?: Error) => void,
): void {
  try {
    readSendBody(request);
    done();
  } catch (error) {
    done(error as Error);
  }
}

// A callback hook, not an async one: this runs on every send, and a promise per request is not free.
function readSendBody(request: FastifyRequest): void {
  request.uploads = NO_UPLOADS;
  if (request.body instanceof MultipartBody) {
    request.uploads = request.body.files;
    request.body = request.body.fields;
  }
  const body = (request.body ?? {}) as unknown;
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new ApiError("MalformedBody", "The request body must be form fields or a JSON object.");
  }
  const isJson = request.headers["content-type"]?.includes("json") ?? false;
  request.body = prepareSendParams(body as Record<string, unknown>, isJson);
}

/**
 * The send's parameters before the schema sees them (a request body, or an item of a batch): a JSON
 * null is an absent parameter, form values of Headers and Tags are parsed from their JSON text, and
 * the required parameters are checked in Restcomm's order. Changes and returns `params`.
 */
export function prepareSendParams(params: Record<string, unknown>, isJson: boolean): Record<string, unknown> {
  // Only JSON has null; form and multipart values are always text.
  if (isJson) {
    for (const key in params) if (params[key] === null) delete params[key];
  } else {
    parseJsonTextParams(params);
  }
  const hasParts = params.Html !== undefined || params.Text !== undefined;
  // A template gives the body and the subject (applyTemplate, in the route); without one, nothing changes.
  const templated = params.TemplateSid !== undefined || params.TemplateName !== undefined;
  for (const [name, kind] of REQUIRED) {
    if (name === "Body" && (hasParts || templated)) continue;
    const value = params[name];
    // The template's subject is used when none is given; one given empty is still refused.
    if (name === "Subject" && templated && value === undefined) continue;
    // An empty Body is a legitimate email; the other three are meaningless when empty.
    const empty =
      value === undefined || (name !== "Body" && typeof value === "string" && value.trim() === "");
    if (empty) throw new ApiError(kind, `${name} can not be null.${caseHint(params, name)}`);
  }
  return params;
}

/** When `name` is missing but sent in other letters (`from`), say so: parameter names are case-sensitive. */
function caseHint(params: Record<string, unknown>, name: string): string {
  const sent = Object.keys(params).find((key) => key !== name && key.toLowerCase() === name.toLowerCase());
  return sent === undefined
    ? ""
    : ` (Parameter names are case-sensitive: send "${name}", not ${quoteInput(sent)}.)`;
}

/** Parses the JSON text of Headers, Tags and TemplateData in a form or multipart body, in place. */
export function parseJsonTextParams(params: Record<string, unknown>): void {
  for (const name in JSON_TEXT_PARAMS) parseJsonText(params, name);
}

function parseJsonText(params: Record<string, unknown>, name: string): void {
  const value = params[name];
  if (typeof value !== "string") return;
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    // Reported below, like any text that is not an object.
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new ApiError(
      "InvalidParameter",
      `${name} must hold a JSON object, such as ${JSON_TEXT_PARAMS[name]}.`,
    );
  }
  // As in a JSON body: a key given twice would keep its last value silently.
  const duplicate = findDuplicateKey(value);
  if (duplicate) throw duplicateKeyError(duplicate, [name]);
  params[name] = parsed;
}
