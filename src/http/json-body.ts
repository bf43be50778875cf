import { isUtf8 } from "node:buffer";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { ApiError } from "../domain/errors.js";
import { quoteInput } from "../domain/quote.js";
import { type DuplicateKey, findDuplicateKey, type JsonPath, whereJsonStops } from "./json-keys.js";
import { badByte, firstInvalidUtf8, notUtf8 } from "./utf8.js";
import { describeSegments } from "./validation-errors.js";

type JsonParser = (
  request: FastifyRequest,
  body: string,
  done: (error: Error | null, body?: unknown) => void,
) => void;

/**
 * JSON bodies, on every route: Fastify's own parser (secure-json-parse, refusing `__proto__` and
 * `constructor.prototype` keys as before), given the text only once its bytes are known to be UTF-8
 * (decoding would turn any other byte into U+FFFD silently), and the parsed body passed on only once
 * no object in it repeats a key. Registered before the routes: a context takes its parsers when created.
 */
export function addJsonBodyParser(app: FastifyInstance): void {
  const parseJson = app.getDefaultJsonParser("error", "error") as JsonParser;
  app.removeContentTypeParser("application/json");
  app.addContentTypeParser("application/json", { parseAs: "buffer" }, (request, body, done) => {
    const bytes = body as Buffer;
    // One native pass (simdutf) over the bytes.
    if (!isUtf8(bytes)) return done(jsonNotUtf8(bytes), undefined);
    const text = bytes.toString("utf8");
    parseJson(request, text, (error, value) => {
      if (error) return done(error, undefined);
      const duplicate = findDuplicateKey(text);
      if (duplicate) return done(duplicateKeyError(duplicate), undefined);
      done(null, value);
    });
  });
}

/**
 * The error for a key given twice; `within` names where the document is (a Headers parameter holding
 * JSON text), when it is not the body itself.
 */
export function duplicateKeyError(duplicate: DuplicateKey, within: JsonPath = []): ApiError {
  const path = [...within, ...duplicate.object];
  const place = path.length === 0 ? "the body" : describeSegments(path);
  return new ApiError(
    "DuplicateKey",
    `The key ${quoteInput(duplicate.key)} is given twice in ${place}. JSON keeps only the last of the two without a word, so Mailroom refuses it: send each key once.`,
  );
}

function jsonNotUtf8(bytes: Buffer): ApiError {
  const offset = firstInvalidUtf8(bytes);
  const where = whereJsonStops(bytes.subarray(0, offset).toString("utf8"));
  const path = describeSegments(where.path);
  const what = !where.inString
    ? "The JSON body"
    : where.inKey
      ? `A key in ${path || "the body"}`
      : path || "The JSON body";
  return notUtf8(what, badByte(bytes, offset));
}
