import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import Type from "typebox";
import { ApiError } from "../../domain/errors.js";
import { containsControl, describeUnsafeCharacter } from "../../domain/header-rules.js";
import { isSid } from "../../domain/ids.js";
import { isMessageStatus, MESSAGE_STATUSES } from "../../domain/message-status.js";
import { quoteInput } from "../../domain/quote.js";
import { EmailAttemptModel } from "../../model/email-attempt.js";
import {
  EmailMessageModel,
  type EmailMessageSource,
  messageSource,
  readStoredContent,
  SendEmailParams,
  storedContentOf,
} from "../../model/email-message.js";
import { API_BASE, emailMessagesPath } from "../../model/paths.js";
import type { EmailMessageService } from "../../services/email-messages.js";
import { MessageScheduleService } from "../../services/message-schedule.js";
import type { TemplateService } from "../../services/templates.js";
import type { EmailFilter, EmailMessageView, MailStore } from "../../store/types.js";
import { assertMayAct } from "../auth.js";
import { parseFilterDate } from "../dates.js";
import {
  answerIdempotently,
  IdempotencyHeaders,
  requestHash as idempotencyHash,
  readIdempotencyKey,
} from "../idempotency.js";
import { type MultipartLimits, parseMultipart } from "../multipart.js";
import { PagingQuery, pagingFields, pagingListSchema, parsePageRequest } from "../paging.js";
import { readSend } from "../read-send.js";
import { renderResource, sendList, sendResource } from "../representation.js";
import {
  AccountParams,
  ErrorBody,
  errorResponses,
  FORM_AND_JSON,
  JSON_AND_XML,
  NoQuery,
  SEND_BODY_TYPES,
} from "../route-schemas.js";
import { prepareSendBody } from "../send-body.js";
import { emailBatchRoutes } from "./email-batch.js";

interface Deps {
  store: MailStore;
  emails: EmailMessageService;
  templates: TemplateService;
  limits: MultipartLimits;
}

const MessageParams = Type.Object({
  accountSid: Type.String({ description: "The account's SID (or email address)." }),
  sid: Type.String({ description: "The message's SID (EM…)." }),
});

const AttachmentParams = Type.Object({
  accountSid: Type.String(),
  sid: Type.String(),
  index: Type.String({ pattern: "^\\d{1,4}$", description: "The attachment's position, from 0." }),
});

const ListQuery = Type.Object(
  {
    ...PagingQuery,
    To: Type.Optional(
      Type.String({ description: "Messages whose To contains this text (case-insensitive)." }),
    ),
    From: Type.Optional(Type.String({ description: "Messages whose From contains this text." })),
    Status: Type.Optional(Type.String({ description: MESSAGE_STATUSES.join(", ") })),
    StartTime: Type.Optional(Type.String({ description: "Created on or after: yyyy-MM-dd or ISO 8601." })),
    EndTime: Type.Optional(
      Type.String({ description: "Created before the end of: yyyy-MM-dd or ISO 8601." }),
    ),
    Tag: Type.Optional(
      Type.Union([Type.String(), Type.Array(Type.String())], {
        description: "name:value; repeat it to require several tags.",
      }),
    ),
  },
  { additionalProperties: false },
);

/** `POST …/Email/Messages/{Sid}`: cancel or reschedule (docs/api.md#scheduled-send-cancel-and-reschedule). */
const UpdateEmailParams = Type.Object(
  {
    Status: Type.Optional(
      Type.String({
        description: "canceled: cancel the message while no worker has taken it (the only value).",
      }),
    ),
    SendAt: Type.Optional(
      Type.String({
        description:
          "Moves a scheduled message: an ISO 8601 date-time with an offset, at most 30 days ahead. Not with Status.",
        examples: ["2026-05-01T09:30:00Z"],
      }),
    ),
  },
  { additionalProperties: false },
);

/** Whose templates a send may use: the account's and its ancestors'. */
function lineageOf(request: FastifyRequest) {
  return { account: request.account, ancestors: request.accountAncestors };
}

type AccountRoute = { Params: { accountSid: string } };
type MessageRoute = { Params: { accountSid: string; sid: string } };

/** `/Accounts/{AccountSid}/Email/Messages` and its sub-resources (in the authenticated context). */
export async function emailMessageRoutes(app: FastifyInstance, deps: Deps): Promise<void> {
  // Only this context reads multipart bodies (sends with attachments).
  app.addContentTypeParser("multipart/form-data", parseMultipart(deps.limits));
  // In this context: a multipart body reaches the batch route, which refuses it in its own words.
  await emailBatchRoutes(app, deps);
  const base = `${API_BASE}/Accounts/:accountSid/Email/Messages`;
  const tags = ["Email messages"];

  app.post<AccountRoute & { Body: SendEmailParams }>(
    base,
    {
      schema: {
        tags,
        summary: "Send an email",
        description:
          "Accepts a message, stores it durably and queues it for delivery; answers 200 with the message once it is committed. Form, JSON and multipart bodies take the same parameters; in form and multipart bodies Headers, Tags and TemplateData hold JSON text, and files are parts named Attachment. With TemplateSid or TemplateName, Subject, Html and Text are rendered from the template (those given on the request win). With an Idempotency-Key, a repeat within 24 hours gets the first answer (Idempotent-Replayed: true) and sends nothing.",
        params: AccountParams,
        querystring: NoQuery,
        headers: IdempotencyHeaders,
        body: SendEmailParams,
        consumes: SEND_BODY_TYPES,
        produces: JSON_AND_XML,
        response: { 200: EmailMessageModel.schema, ...errorResponses, 409: ErrorBody },
      },
      preValidation: prepareSendBody,
    },
    async (request, reply) => {
      const account = request.account;
      assertMayAct(request, "send email");
      const key = readIdempotencyKey(request);
      if (key === undefined) {
        const read = readSend(deps.templates, lineageOf(request), request.body, request.uploads);
        // Without a template the read is synchronous: no await (a turn of the microtask queue) for it.
        const message = await deps.emails.accept(account.sid, read instanceof Promise ? await read : read);
        // Restcomm answers 200, not 201, with the message echoed back.
        return sendResource(request, reply, EmailMessageModel.render(message));
      }
      // The request as the client sent it is what a repeat must match (not the rendered template).
      const requestHash = idempotencyHash(request, request.body, request.uploads);
      return answerIdempotently(
        reply,
        { store: deps.store, accountSid: account.sid, key, requestHash },
        async (claimed) => {
          const prepared = await deps.emails.prepare(
            account.sid,
            await readSend(deps.templates, lineageOf(request), request.body, request.uploads),
          );
          const answer = renderResource(request, EmailMessageModel.render(prepared.source));
          await deps.emails.acceptPrepared([prepared], { ...claimed, answer });
          return answer;
        },
      );
    },
  );

  app.get<AccountRoute>(
    base,
    {
      schema: {
        tags,
        summary: "List email messages",
        description: "Newest first, with Restcomm's paging.",
        params: AccountParams,
        querystring: ListQuery,
        produces: JSON_AND_XML,
        response: { 200: pagingListSchema("messages", EmailMessageModel.schema), ...errorResponses },
      },
    },
    async (request, reply) => {
      const account = request.account;
      const query = request.query as Record<string, unknown>;
      const page = parsePageRequest(query);
      const { filter, echoed } = parseFilter(account.sid, query);
      const result = await deps.store.listEmails(filter, page.page * page.pageSize, page.pageSize);
      const path = `${emailMessagesPath(account.sid)}.json`;
      return sendList(request, reply, {
        element: "EmailMessages",
        jsonKey: "messages",
        paging: pagingFields(path, echoed, page, result.total, result.rows.length),
        items: result.rows.map((row) => EmailMessageModel.render(toSource(row))),
      });
    },
  );

  const messageSchema = (summary: string, response: Record<number, unknown>, produces = JSON_AND_XML) => ({
    schema: {
      tags,
      summary,
      params: MessageParams,
      querystring: NoQuery,
      produces,
      response: { ...response, ...errorResponses },
    },
  });

  app.get<MessageRoute>(
    `${base}/:sid`,
    messageSchema("Get an email message", { 200: EmailMessageModel.schema }),
    async (request, reply) => {
      const message = await findOwnMessage(deps, request);
      return sendResource(request, reply, EmailMessageModel.render(message));
    },
  );

  const schedule = new MessageScheduleService(deps.store, (dueAt) => deps.emails.wakeDelivery(dueAt));
  app.post<MessageRoute & { Body: { Status?: string; SendAt?: string } }>(
    `${base}/:sid`,
    {
      schema: {
        tags,
        summary: "Cancel or reschedule an email message",
        description:
          "Status=canceled cancels a message no worker has taken yet (scheduled, or queued and not being sent): it becomes canceled and is never delivered. SendAt alone moves a scheduled message. 409 once the message is being sent or final.",
        params: MessageParams,
        querystring: NoQuery,
        body: UpdateEmailParams,
        consumes: FORM_AND_JSON,
        produces: JSON_AND_XML,
        response: { 200: EmailMessageModel.schema, ...errorResponses },
      },
      // No body at all is no parameter: the update then says there is nothing to change.
      preValidation: async (request) => {
        request.body ??= {};
      },
    },
    async (request, reply) => {
      assertMayAct(request, "send email");
      const row = await findOwnRow(deps, request);
      const updated = await schedule.update(request.account.sid, row, request.body);
      return sendResource(request, reply, EmailMessageModel.render(toSource(updated)));
    },
  );

  app.get<MessageRoute>(
    `${base}/:sid/Attempts`,
    messageSchema("List a message's delivery attempts", { 200: Type.Array(EmailAttemptModel.schema) }),
    async (request, reply) => {
      const message = await findOwnMessage(deps, request);
      const attempts = await deps.store.listAttempts(message.sid);
      return sendList(request, reply, {
        element: "Attempts",
        jsonKey: "attempts",
        paging: undefined,
        items: attempts.map((attempt) => EmailAttemptModel.render(attempt)),
      });
    },
  );

  app.get<MessageRoute>(
    `${base}/:sid/Mime`,
    messageSchema(
      "Get the message as sent (MIME)",
      { 200: Type.String({ description: "The composed message, exactly the bytes every attempt sends." }) },
      ["message/rfc822"],
    ),
    async (request, reply) => {
      const message = await findOwnMessage(deps, request);
      refusePurged(message);
      const raw = await deps.store.findMime(message.sid);
      if (raw === undefined) {
        throw new ApiError(
          "MimeNotAvailable",
          `Message ${message.sid} has not been composed yet (status ${message.status}); its MIME exists from the first delivery attempt on.`,
        );
      }
      return reply.type("message/rfc822").send(raw);
    },
  );

  app.get<{ Params: { accountSid: string; sid: string; index: string } }>(
    `${base}/:sid/Attachments/:index`,
    {
      schema: {
        tags,
        summary: "Download an attachment",
        params: AttachmentParams,
        querystring: NoQuery,
        produces: ["application/octet-stream"],
        response: {
          200: Type.String({ description: "The attachment's bytes, with its Content-Type." }),
          ...errorResponses,
        },
      },
    },
    async (request, reply) => sendAttachment(deps, request, reply),
  );
}

async function sendAttachment(
  deps: Deps,
  request: FastifyRequest<{ Params: { accountSid: string; sid: string; index: string } }>,
  reply: FastifyReply,
) {
  const message = await findOwnMessage(deps, request);
  refusePurged(message);
  const index = Number(request.params.index);
  const attachment = message.content.attachments[index];
  const missing = () =>
    new ApiError(
      "AttachmentNotFound",
      `Message ${message.sid} has ${message.content.attachments.length} attachment(s), numbered from 0; there is no ${request.params.index}.`,
    );
  if (!attachment) throw missing();
  const bytes = (await deps.store.findBlobs([attachment.sha256])).get(attachment.sha256);
  if (!bytes) throw missing();
  return reply
    .type(attachment.content_type)
    .header("content-disposition", contentDisposition(attachment.filename))
    .header("x-content-type-options", "nosniff")
    .send(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
}

/** RFC 6266: an ASCII fallback name and the exact name in RFC 5987 encoding; always a download. */
function contentDisposition(filename: string): string {
  const fallback = filename.replace(/[^\u0020-\u007e]|["\\]/g, "_");
  const encoded = encodeURIComponent(filename).replace(
    /['()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return `attachment; filename="${fallback}"; filename*=UTF-8''${encoded}`;
}

/** 410 once retention or an erasure purged the content: it existed, and will not come back. */
function refusePurged(message: EmailMessageSource): void {
  if (message.content_purged_at === null) return;
  throw new ApiError(
    "ContentPurged",
    `The content of message ${message.sid} was purged on ${new Date(message.content_purged_at).toISOString()} (content retention or an erasure); its metadata is still available.`,
  );
}

function toSource(row: EmailMessageView): EmailMessageSource {
  return messageSource(row, readStoredContent(storedContentOf(row)), row.next_attempt_at);
}

/** The message, only if it belongs to the account in the URL; otherwise a 404 that reveals nothing. */
async function findOwnMessage(
  deps: Deps,
  request: FastifyRequest<MessageRoute>,
): Promise<EmailMessageSource> {
  return toSource(await findOwnRow(deps, request));
}

/** The message's row (see findOwnMessage). */
async function findOwnRow(deps: Deps, request: FastifyRequest<MessageRoute>): Promise<EmailMessageView> {
  const account = request.account;
  const row = isSid(request.params.sid, "EM")
    ? await deps.store.findEmail(account.sid, request.params.sid)
    : undefined;
  if (!row)
    throw new ApiError(
      "MessageNotFound",
      `No email message ${request.params.sid} in account ${account.sid}.`,
    );
  return row;
}

function parseFilter(accountSid: string, query: Record<string, unknown>) {
  const filter: EmailFilter = { accountSid };
  const echoed: Array<[string, string]> = [];
  const text = (name: string): string | undefined => {
    const value = query[name];
    if (value === undefined || value === "") return undefined;
    if (typeof value !== "string") throw new ApiError("InvalidFilter", `${name} must be given once.`);
    if (containsControl(value))
      throw new ApiError("InvalidFilter", `${name} must not contain control characters.`);
    // Filters are echoed in the page's URIs, and XML cannot carry these.
    const unsafe = describeUnsafeCharacter(value);
    if (unsafe !== undefined) throw new ApiError("InvalidFilter", `${name} contains ${unsafe}.`);
    echoed.push([name, value]);
    return value;
  };
  filter.to = text("To");
  filter.from = text("From");
  const status = text("Status");
  if (status !== undefined) {
    if (!isMessageStatus(status)) {
      throw new ApiError(
        "InvalidFilter",
        `Status ${quoteInput(status)} is not one of ${MESSAGE_STATUSES.join(", ")}.`,
      );
    }
    filter.status = status;
  }
  const start = text("StartTime");
  if (start !== undefined) filter.createdFrom = filterDate("StartTime", start).start;
  const end = text("EndTime");
  if (end !== undefined) filter.createdBefore = filterDate("EndTime", end).end;
  const tagValues = query.Tag === undefined ? [] : ([] as unknown[]).concat(query.Tag);
  for (const tag of tagValues) {
    const colon = typeof tag === "string" ? tag.indexOf(":") : -1;
    if (typeof tag !== "string" || colon <= 0 || containsControl(tag) || describeUnsafeCharacter(tag)) {
      throw new ApiError(
        "InvalidFilter",
        `Tag ${quoteInput(String(tag))} must be name:value without control characters, e.g. Tag=campaign:spring.`,
      );
    }
    filter.tags = [...(filter.tags ?? []), [tag.slice(0, colon), tag.slice(colon + 1)]];
    echoed.push(["Tag", tag]);
  }
  return { filter, echoed };
}

function filterDate(name: string, value: string) {
  const parsed = parseFilterDate(value);
  if (!parsed) {
    throw new ApiError(
      "InvalidFilter",
      `${name} ${quoteInput(value)} is not a date; use yyyy-MM-dd or an ISO 8601 date-time.`,
    );
  }
  return parsed;
}
