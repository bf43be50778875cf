import type { FastifyRequest } from "fastify";
import { ApiError } from "../domain/errors.js";

/** The parameters of a POST/PUT: form fields or a JSON object; no body means no parameters. */
export function bodyParams(request: FastifyRequest): Record<string, unknown> {
  const body = request.body;
  if (body === undefined || body === null) return {};
  if (typeof body !== "object" || Array.isArray(body)) {
    throw new ApiError("MalformedBody", "The request body must be form fields or a JSON object.");
  }
  return body as Record<string, unknown>;
}
