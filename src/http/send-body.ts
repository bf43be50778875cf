import type { FastifyRequest } from "fastify";
import { ApiError, type ErrorKind } from "../domain/errors.js";
import { type AttachmentUpload, MAX_ATTACHMENTS } from "../model/email-message.js";

declare module "fastify" {
  interface FastifyRequest {
    /** The file parts of a multipart send (field `Attachment`), in order. */
    uploads: AttachmentUpload[];
  }
}

export interface SendBodyLimits {
  /** MAILROOM_MAX_MESSAGE_BYTES: no single file may be larger (the total is checked later). */
  maxMessageBytes: number;
  /** MAILROOM_BODY_LIMIT: the longest text field. */
  bodyLimitBytes: number;
}

// Restcomm checks the required parameters in this order and names the first one missing.
const REQUIRED: ReadonlyArray<readonly [string, ErrorKind]> = [
  ["From", "FromMissing"],
  ["To", "ToMissing"],
  ["Body", "BodyMissing"],
  ["Subject", "SubjectMissing"],
];

/** Parameters whose form and multipart value is a JSON object written as text. */
const JSON_TEXT_PARAMS = ["Headers", "Tags"];

/**
 * Runs before the route schema checks a send: brings form, multipart and JSON bodies to one shape
 * (multipart file parts set aside as uploads; Headers and Tags parsed from their JSON text in form
 * bodies; a JSON null is an absent parameter), then checks the required parameters in Restcomm's
 * order with Restcomm's messages, so `From can not be null.` reads as it always did.
 */
export function prepareSendBody(limits: SendBodyLimits) {
  return async (request: FastifyRequest): Promise<void> => {
    request.uploads = [];
    if (request.isMultipart()) request.body = await readMultipart(request, limits);
    const body = (request.body ?? {}) as unknown;
    if (typeof body !== "object" || body === null || Array.isArray(body)) {
      throw new ApiError("MalformedBody", "The request body must be form fields or a JSON object.");
    }
    const params = body as Record<string, unknown>;
    const isJson = request.headers["content-type"]?.includes("json") ?? false;
    for (const [key, value] of Object.entries(params)) if (value === null) delete params[key];
    if (!isJson) for (const name of JSON_TEXT_PARAMS) parseJsonText(params, name);
    const hasParts = params.Html !== undefined || params.Text !== undefined;
    for (const [name, kind] of REQUIRED) {
      if (name === "Body" && hasParts) continue;
      const value = params[name];
      // An empty Body is a legitimate email; the other three are meaningless when empty.
      const empty =
        value === undefined || (name !== "Body" && typeof value === "string" && value.trim() === "");
      if (empty) throw new ApiError(kind, `${name} can not be null.`);
    }
    request.body = params;
  };
}

function parseJsonText(params: Record<string, unknown>, name: string): void {
  const value = params[name];
  if (typeof value !== "string") return;
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw new ApiError(
      "InvalidParameter",
      `${name} must hold a JSON object, such as {"X-Campaign":"spring"}.`,
    );
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new ApiError(
      "InvalidParameter",
      `${name} must hold a JSON object, such as {"X-Campaign":"spring"}.`,
    );
  }
  params[name] = parsed;
}

/**
 * A multipart/form-data body: text fields as a form body would give them (a repeated field collects
 * its values in a list), file parts named `Attachment` as uploads. A file part of another name is an
 * unknown parameter; a file over MAILROOM_MAX_MESSAGE_BYTES stops the upload with a 413 at once.
 */
async function readMultipart(
  request: FastifyRequest,
  limits: SendBodyLimits,
): Promise<Record<string, unknown>> {
  const fields = Object.create(null) as Record<string, string | string[]>;
  const parts = request.parts({
    limits: {
      fileSize: limits.maxMessageBytes,
      files: MAX_ATTACHMENTS,
      fieldSize: limits.bodyLimitBytes,
      fields: 1000,
    },
  });
  try {
    for await (const part of parts) {
      if (part.type === "file") {
        if (part.fieldname !== "Attachment") {
          throw new ApiError(
            "UnknownParameter",
            `Unknown file part "${part.fieldname}": attach files as parts named "Attachment".`,
          );
        }
        const content = await part.toBuffer();
        request.uploads.push({
          filename: part.filename,
          contentType: part.mimetype || "application/octet-stream",
          contentId: null,
          content,
        });
        continue;
      }
      if (part.fieldname === "Attachment") {
        throw new ApiError(
          "InvalidAttachment",
          "Attachment must be a file part (with a filename), not a text field.",
        );
      }
      if (part.valueTruncated) {
        throw new ApiError(
          "PayloadTooLarge",
          `${part.fieldname} is longer than this server accepts (MAILROOM_BODY_LIMIT).`,
        );
      }
      const value = String(part.value);
      const current = fields[part.fieldname];
      if (current === undefined) fields[part.fieldname] = value;
      else if (Array.isArray(current)) current.push(value);
      else fields[part.fieldname] = [current, value];
    }
  } catch (error) {
    throw multipartError(error, limits);
  }
  return fields;
}

/** @fastify/multipart's limit errors, as Mailroom's errors with the limit in the message. */
function multipartError(error: unknown, limits: SendBodyLimits): unknown {
  const code = (error as { code?: string }).code;
  if (code === "FST_REQ_FILE_TOO_LARGE") {
    return new ApiError(
      "MessageTooLarge",
      `An attachment is larger than a message may carry: at most ${limits.maxMessageBytes} bytes (MAILROOM_MAX_MESSAGE_BYTES).`,
    );
  }
  if (code === "FST_FILES_LIMIT") {
    return new ApiError("MessageTooLarge", `A message may carry at most ${MAX_ATTACHMENTS} attachments.`);
  }
  if (code === "FST_PARTS_LIMIT" || code === "FST_FIELDS_LIMIT") {
    return new ApiError("PayloadTooLarge", "The multipart body has more parts than this server accepts.");
  }
  return error;
}
