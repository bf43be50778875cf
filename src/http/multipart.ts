import { createRequire } from "node:module";
import type { BusboyHeaders, BusboyInstance } from "@fastify/busboy";
import type { FastifyRequest } from "fastify";
import { ApiError } from "../domain/errors.js";
import { quoteInput } from "../domain/quote.js";
import { type AttachmentUpload, MAX_ATTACHMENTS } from "../model/email-message.js";
import { notUtf8, parameterLabel } from "./utf8.js";

export interface MultipartLimits {
  /** MAILROOM_MAX_MESSAGE_BYTES: no single file may be larger (the total is checked later). */
  maxMessageBytes: number;
  /** MAILROOM_BODY_LIMIT: the whole body, files included. */
  bodyLimitBytes: number;
}

/** A multipart/form-data body: its text fields as a form body gives them, and its files in order. */
export class MultipartBody {
  constructor(
    readonly fields: Record<string, string | string[]>,
    readonly files: AttachmentUpload[],
  ) {}
}

type Done = (error: Error | null, body?: unknown) => void;

// busboy decodes a text part (UTF-8, unless the part names another charset) and turns each byte that
// is not UTF-8 into U+FFFD, then hands over only the text: a U+FFFD in it is all that is left to see.
// Refused, so nothing is replaced silently; a real U+FFFD is refused with it (text with one is text
// that was already damaged, and form and JSON bodies, read from their bytes, still carry it).
const REPLACEMENT = "\ufffd";
const REPLACEMENT_DETAIL =
  "it holds U+FFFD, which is what bytes that are not UTF-8 become in a multipart text part";

/**
 * busboy, required at the first multipart body (it is CommonJS, so parsing stays synchronous): most
 * sends are form or JSON bodies, and its code would sit on the main thread's heap for nothing.
 */
let busboyModule: typeof import("@fastify/busboy") | undefined;

function busboyClass(): typeof import("@fastify/busboy").Busboy {
  busboyModule ??= createRequire(import.meta.url)("@fastify/busboy") as typeof import("@fastify/busboy");
  return busboyModule.Busboy;
}

/**
 * Fastify's parser for multipart/form-data, with busboy doing the parsing. Written as a content-type
 * parser rather than through @fastify/multipart: that plugin adds two hooks to every request of its
 * context, and the send route's form requests (the hot path) paid for them (docs/performance.md).
 *
 * File parts must be named `Attachment`; their file names are kept exactly as sent (they are only
 * names, never paths). A file over MAILROOM_MAX_MESSAGE_BYTES, or a body over MAILROOM_BODY_LIMIT,
 * stops the upload with a 413 at once.
 */
export function parseMultipart(limits: MultipartLimits) {
  return (request: FastifyRequest, payload: NodeJS.ReadableStream, done: Done): void => {
    const fields = Object.create(null) as Record<string, string | string[]>;
    const files: AttachmentUpload[] = [];
    let finished = false;
    let received = 0;
    // Parts busboy handed over (fields and files), against the parts the body holds.
    let partsRead = 0;
    const delimiters = delimiterCounter(request.headers["content-type"]);
    const Busboy = busboyClass();
    let busboy: BusboyInstance;
    const finish = (error: Error | null) => {
      if (finished) return;
      finished = true;
      payload.unpipe(busboy);
      // Whatever is still coming is read and dropped, so the connection can answer.
      payload.resume();
      done(error, error ? undefined : new MultipartBody(fields, files));
    };
    try {
      busboy = new Busboy({
        headers: request.headers as BusboyHeaders,
        preservePath: true,
        limits: {
          fileSize: limits.maxMessageBytes,
          files: MAX_ATTACHMENTS,
          fields: 1000,
          fieldSize: limits.bodyLimitBytes,
        },
      });
    } catch (error) {
      done(new ApiError("MalformedBody", `The multipart body cannot be read: ${(error as Error).message}.`));
      return;
    }
    payload.on("data", (chunk: Buffer) => {
      received += chunk.length;
      delimiters?.push(chunk);
      if (received > limits.bodyLimitBytes) finish(bodyTooLarge(limits));
    });
    busboy.on("file", (name, stream, filename, _encoding, mimeType) => {
      partsRead++;
      if (typeof name !== "string") {
        stream.resume();
        return finish(unnamedPart());
      }
      if (name !== "Attachment") {
        stream.resume();
        return finish(
          new ApiError(
            "UnknownParameter",
            `Unknown file part ${quoteInput(name)}: attach files as parts named "Attachment".`,
          ),
        );
      }
      if (filename.includes(REPLACEMENT)) {
        stream.resume();
        return finish(notUtf8(`The file name of attachment ${files.length}`, REPLACEMENT_DETAIL));
      }
      const chunks: Buffer[] = [];
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("limit", () =>
        finish(
          new ApiError(
            "MessageTooLarge",
            `The attachment ${quoteInput(filename)} is larger than a message may carry: at most ${limits.maxMessageBytes} bytes (MAILROOM_MAX_MESSAGE_BYTES).`,
          ),
        ),
      );
      stream.on("end", () => {
        const content = Buffer.concat(chunks);
        files.push({
          filename,
          contentType: mimeType || "application/octet-stream",
          contentId: null,
          content,
        });
      });
    });
    busboy.on("field", (name, value, nameTruncated, valueTruncated) => {
      partsRead++;
      // busboy hands a part without a name over with none (undefined, whatever its typings say).
      if (typeof name !== "string") return finish(unnamedPart());
      if (name === "Attachment") {
        return finish(
          new ApiError(
            "InvalidAttachment",
            "Attachment must be a file part (with a filename), not a text field.",
          ),
        );
      }
      if (nameTruncated || valueTruncated) return finish(bodyTooLarge(limits));
      if (name.includes(REPLACEMENT)) return finish(notUtf8("A parameter name", REPLACEMENT_DETAIL));
      if (value.includes(REPLACEMENT)) return finish(notUtf8(parameterLabel(name), REPLACEMENT_DETAIL));
      const current = fields[name];
      if (current === undefined) fields[name] = value;
      else if (Array.isArray(current)) current.push(value);
      else fields[name] = [current, value];
    });
    busboy.on("filesLimit", () =>
      finish(new ApiError("MessageTooLarge", `A message may carry at most ${MAX_ATTACHMENTS} attachments.`)),
    );
    busboy.on("fieldsLimit", () =>
      finish(new ApiError("PayloadTooLarge", "The multipart body has too many fields.")),
    );
    busboy.on("error", (error: Error) =>
      finish(new ApiError("MalformedBody", `The multipart body cannot be read: ${error.message}.`)),
    );
    busboy.on("finish", () => {
      // busboy skips a part it cannot read (a line break inside a header, no name) without a word:
      // the part would be lost silently, so the whole body is refused instead.
      const parts = delimiters === undefined ? partsRead : delimiters.count - 1;
      if (partsRead < parts) {
        return finish(
          new ApiError(
            "MalformedBody",
            `The multipart body has ${parts} parts but only ${partsRead} could be read: a part's headers are malformed (a line break inside a header value, or a Content-Disposition without a name). Nothing was accepted.`,
          ),
        );
      }
      finish(null);
    });
    payload.pipe(busboy);
  };
}

/**
 * Counts the delimiter lines of a multipart body as it streams by (`CRLF--boundary`, the first one
 * allowed at the very start): a body of n parts has n + 1 of them, the closing one included. Each
 * chunk is searched natively; a delimiter split between two chunks is found in the seam, the last
 * bytes of one chunk joined to the first of the next (too short to hold a whole one on either side).
 * Undefined when the Content-Type names no boundary (busboy refuses that body itself).
 */
function delimiterCounter(
  contentType: string | undefined,
): { count: number; push(chunk: Buffer): void } | undefined {
  const boundary = /;\s*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType ?? "");
  const text = boundary?.[1] ?? boundary?.[2];
  if (text === undefined) return undefined;
  const pattern = Buffer.from(`\r\n--${text}`, "latin1");
  const keep = pattern.length - 1;
  // As if the body began with a line break, so that a delimiter at the very start counts too.
  let tail: Buffer = Buffer.from("\r\n");
  const occurrences = (bytes: Buffer) => {
    let found = 0;
    for (let at = bytes.indexOf(pattern); at >= 0; at = bytes.indexOf(pattern, at + pattern.length)) found++;
    return found;
  };
  const counter = {
    count: 0,
    push(chunk: Buffer) {
      counter.count += occurrences(Buffer.concat([tail, chunk.subarray(0, keep)])) + occurrences(chunk);
      tail =
        chunk.length >= keep
          ? chunk.subarray(chunk.length - keep)
          : Buffer.concat([tail, chunk]).subarray(-keep);
    },
  };
  return counter;
}

function unnamedPart(): ApiError {
  return new ApiError(
    "MalformedBody",
    'A part of the multipart body has no name: each part needs Content-Disposition: form-data; name="…". Nothing was accepted.',
  );
}

function bodyTooLarge(limits: MultipartLimits): ApiError {
  return new ApiError(
    "PayloadTooLarge",
    `The request body is larger than this server accepts: at most ${limits.bodyLimitBytes} bytes (MAILROOM_BODY_LIMIT).`,
  );
}
