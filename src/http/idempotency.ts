import { createHash } from "node:crypto";
import type { FastifyReply, FastifyRequest } from "fastify";
import Type from "typebox";
import { ApiError } from "../domain/errors.js";
import type { AttachmentUpload } from "../model/email-message.js";
import { IDEMPOTENCY_CLAIM_LOST, type IdempotentAnswer, type MailStore } from "../store/types.js";
import { type RenderedAnswer, sendRendered, wantsJson } from "./representation.js";

/** How long a key and its answer are kept (Stripe's and the 24 hours). */
export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;
/**
 * How long a claim holds without an answer: a request that died between claim and commit (kill -9)
 * leaves its key to a repeat after this. Far longer than any accept; a request still running when a
 * repeat takes its key over stores nothing (its commit finds the claim gone: 409).
 */
export const IDEMPOTENCY_LOCK_MS = 60_000;
const MAX_KEY_LENGTH = 256;
const PRINTABLE_ASCII = /^[\x20-\x7e]+$/;

/** The header as the OpenAPI document shows it (checked by readIdempotencyKey, for its own error code). */
export const IdempotencyHeaders = Type.Object({
  "idempotency-key": Type.Optional(
    Type.String({
      description:
        "1–256 printable ASCII characters, such as a UUID. A repeat within 24 hours with the same key and request gets the first answer, with Idempotent-Replayed: true, and sends nothing.",
    }),
  ),
});

/** The request's claim, for the write that stores its message(s) and answer. */
export type IdempotencyClaimed = Omit<IdempotentAnswer, "answer">;

/** The Idempotency-Key header, checked; undefined when the request has none. */
export function readIdempotencyKey(request: FastifyRequest): string | undefined {
  const value = request.headers["idempotency-key"];
  if (value === undefined) return undefined;
  if (typeof value !== "string") {
    throw new ApiError("InvalidIdempotencyKey", "Idempotency-Key must be given once.");
  }
  if (value.length === 0 || value.length > MAX_KEY_LENGTH || !PRINTABLE_ASCII.test(value)) {
    throw new ApiError(
      "InvalidIdempotencyKey",
      `Idempotency-Key must be 1 to ${MAX_KEY_LENGTH} printable ASCII characters (space to ~), such as a UUID.`,
    );
  }
  return value;
}

/**
 * What makes two requests "the same" for a key: method, path, the format asked for (the stored answer
 * is JSON or XML), and the parameters as read (after form, JSON or multipart parsing) with each
 * attachment's name, type and SHA-256. Parsed rather than raw bytes: a multipart body's boundary is
 * random on every retry, so its bytes never repeat. Parameters compare in the order sent.
 */
export function requestHash(
  request: FastifyRequest,
  params: unknown,
  uploads: readonly AttachmentUpload[] = [],
): string {
  const hash = createHash("sha256");
  hash.update(`${request.method}\n${request.url}\n${wantsJson(request) ? "json" : "xml"}\n`);
  hash.update(JSON.stringify(params) ?? "");
  for (const upload of uploads) {
    const digest = createHash("sha256").update(upload.content).digest("hex");
    hash.update(`\n${JSON.stringify([upload.filename, upload.contentType, upload.contentId, digest])}`);
  }
  return hash.digest("hex");
}

/**
 * Runs a send under its Idempotency-Key: claims the key, then `run` stores the message(s) with the
 * answer on the claim (or, with no key, just sends). A repeat gets the stored answer with
 * `Idempotent-Replayed: true`; the key used for another request, or still in flight, is a 409. A
 * request that fails gives its claim up, so that a repeat is processed afresh.
 */
export async function answerIdempotently(
  reply: FastifyReply,
  deps: { store: MailStore; accountSid: string; key: string; requestHash: string },
  run: (claimed: IdempotencyClaimed) => Promise<RenderedAnswer>,
): Promise<FastifyReply> {
  const { store, accountSid, key } = deps;
  const claim = await store.claimIdempotencyKey({
    accountSid,
    key,
    requestHash: deps.requestHash,
    now: Date.now(),
    lockMs: IDEMPOTENCY_LOCK_MS,
    ttlMs: IDEMPOTENCY_TTL_MS,
  });
  switch (claim.kind) {
    case "replay":
      reply.header("idempotent-replayed", "true");
      return sendRendered(reply, claim.answer);
    case "mismatch":
      throw new ApiError(
        "IdempotencyKeyReused",
        "This Idempotency-Key was used in the last 24 hours for a different request (another body, path or format); nothing was sent. Use a new key for a new request.",
      );
    case "in-flight":
      // The first request's commit is a matter of milliseconds: a second is plenty.
      reply.header("retry-after", "1");
      throw inFlight();
  }
  const claimed = { accountSid, key, token: claim.token };
  let answer: RenderedAnswer;
  try {
    answer = await run(claimed);
  } catch (error) {
    // Only an unanswered claim of ours is deleted: an answer committed before the error stays.
    await store.releaseIdempotencyKey(accountSid, key, claim.token).catch(() => {});
    if ((error as { code?: unknown }).code === IDEMPOTENCY_CLAIM_LOST) throw inFlight();
    throw error;
  }
  return sendRendered(reply, answer);
}

function inFlight(): ApiError {
  return new ApiError(
    "IdempotencyKeyInFlight",
    "A request with this Idempotency-Key is still being processed; this one sent nothing. Repeat it in a moment with the same key to get its answer.",
  );
}
