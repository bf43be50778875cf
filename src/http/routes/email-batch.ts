import type { FastifyInstance, FastifyRequest, FastifySchemaCompiler } from "fastify";
import type { TSchema } from "typebox";
import Type from "typebox";
import { ApiError, moreInfoPath } from "../../domain/errors.js";
import { EmailMessageModel, SendEmailParams } from "../../model/email-message.js";
import { API_BASE } from "../../model/paths.js";
import type { EmailMessageService, PreparedEmail } from "../../services/email-messages.js";
import type { TemplateService } from "../../services/templates.js";
import type { MailStore } from "../../store/types.js";
import { assertMayAct } from "../auth.js";
import { type BatchSender, prepareBatchItem } from "../batch-item.js";
import {
  answerIdempotently,
  type IdempotencyClaimed,
  IdempotencyHeaders,
  readIdempotencyKey,
  requestHash,
} from "../idempotency.js";
import { errorResource, type RenderedAnswer, renderMixedList, sendRendered } from "../representation.js";
import { AccountParams, ErrorBody, errorResponses, JSON_AND_XML, NoQuery } from "../route-schemas.js";
import { compileCheck, loadSchemaChecks } from "../typebox-check.js";

/** The most messages one batch may carry. */
export const MAX_BATCH = 500;

/**
 * The route's own validation: the body is checked by the handler (the batch's shape, with its own
 * codes) and item by item (an invalid item is that item's error, not the batch's); the rest as on
 * every route, in the same words. The body schema stays in the route for the OpenAPI document.
 * TypeBox's compiler is loaded by the route's preValidation hook, at its first request.
 */
const validatorCompiler: FastifySchemaCompiler<TSchema> = ({ schema, httpPart }) => {
  if (httpPart === "body") return () => true;
  const check = compileCheck(schema);
  const validate = (data: unknown) => {
    const errors = check(data);
    validate.errors = errors ?? null;
    return errors === undefined;
  };
  validate.errors = null as ReturnType<typeof check> | null;
  return validate;
};

/**
 * `POST …/Email/Messages/Batch`: up to 500 messages in one JSON array. Every item is checked as a
 * single send would be; the valid ones are stored in one transaction, and the answer lists, in
 * request order, each message (as a send answers it) or its error. See docs/api.md#batch-send.
 */
export async function emailBatchRoutes(
  app: FastifyInstance,
  deps: { store: MailStore; emails: EmailMessageService; templates: TemplateService },
): Promise<void> {
  app.post(
    `${API_BASE}/Accounts/:accountSid/Email/Messages/Batch`,
    {
      schema: {
        tags: ["Email messages"],
        summary: "Send a batch of emails",
        description: `A JSON array of 1 to ${MAX_BATCH} messages, each with the parameters of a single send. Valid items are accepted in one transaction even when others are not; the answer lists each item in order: the message, or the error a single send would have got. With an Idempotency-Key, a repeat within 24 hours gets the first answer.`,
        params: AccountParams,
        querystring: NoQuery,
        headers: IdempotencyHeaders,
        body: Type.Array(SendEmailParams, { minItems: 1, maxItems: MAX_BATCH }),
        consumes: ["application/json"],
        produces: JSON_AND_XML,
        response: {
          200: Type.Object(
            { messages: Type.Array(Type.Union([EmailMessageModel.schema, ErrorBody])) },
            {
              description:
                "In XML: <RestcommResponse><Messages> with <EmailMessage> and <RestException> items.",
            },
          ),
          ...errorResponses,
          409: ErrorBody,
        },
      },
      validatorCompiler,
      preValidation: async () => {
        await loadSchemaChecks();
      },
    },
    async (request, reply) => {
      const account = request.account;
      assertMayAct(request, "send email");
      const key = readIdempotencyKey(request);
      const items = readBatch(request);
      const sender = { account, ancestors: request.accountAncestors };
      const send = (claimed?: IdempotencyClaimed) => sendBatch(request, deps, sender, items, claimed);
      if (key === undefined) return sendRendered(reply, await send());
      return answerIdempotently(
        reply,
        { store: deps.store, accountSid: account.sid, key, requestHash: requestHash(request, items) },
        send,
      );
    },
  );
}

/** The body as a batch: a JSON array of 1 to MAX_BATCH items (each checked on its own later). */
function readBatch(request: FastifyRequest): unknown[] {
  if (!(request.headers["content-type"] ?? "").toLowerCase().startsWith("application/json")) {
    throw new ApiError(
      "BatchNotJson",
      "A batch is a JSON array: send it with Content-Type: application/json (attachments go in each item's Attachments).",
    );
  }
  const body = request.body;
  if (!Array.isArray(body)) {
    throw new ApiError(
      "InvalidBatch",
      'A batch must be a JSON array of messages, such as [{"From":"…","To":"…","Subject":"…","Body":"…"}].',
    );
  }
  if (body.length === 0) throw new ApiError("BatchEmpty", "The batch is empty: send at least one message.");
  if (body.length > MAX_BATCH) {
    throw new ApiError(
      "BatchTooLarge",
      `The batch has ${body.length} messages; at most ${MAX_BATCH} are taken at once. Split it.`,
    );
  }
  return body;
}

/**
 * Checks every item, stores the valid ones in one transaction (with the answer, on a claimed key),
 * and returns the answer. An item's ApiError is its entry in the answer; anything else (the store is
 * down) fails the whole request, and nothing is stored.
 */
async function sendBatch(
  request: FastifyRequest,
  { emails, templates }: { emails: EmailMessageService; templates: TemplateService },
  sender: BatchSender,
  items: unknown[],
  claimed: IdempotencyClaimed | undefined,
): Promise<RenderedAnswer> {
  const outcomes = await Promise.all(
    items.map((item) =>
      prepareBatchItem(emails, templates, sender, item).catch((error: unknown) => {
        if (error instanceof ApiError) return error;
        throw error;
      }),
    ),
  );
  const prepared = outcomes.filter((outcome): outcome is PreparedEmail => !(outcome instanceof ApiError));
  const answer = renderMixedList(request, {
    element: "Messages",
    jsonKey: "messages",
    items: outcomes.map((outcome) =>
      outcome instanceof ApiError
        ? errorResource({
            status: outcome.status,
            code: outcome.code,
            message: outcome.message,
            moreInfo: moreInfoPath(outcome.code),
          })
        : EmailMessageModel.render(outcome.source),
    ),
  });
  // Nothing valid and no key to answer on: nothing to store.
  if (prepared.length > 0 || claimed) {
    await emails.acceptPrepared(prepared, claimed && { ...claimed, answer });
  }
  return answer;
}
