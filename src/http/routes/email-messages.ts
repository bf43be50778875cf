import type { FastifyInstance, FastifyRequest } from "fastify";
import { ApiError } from "../../domain/errors.js";
import { isSid } from "../../domain/ids.js";
import { isMessageStatus, MESSAGE_STATUSES } from "../../domain/message-status.js";
import type { AccountService } from "../../services/accounts.js";
import type { EmailMessageService } from "../../services/email-messages.js";
import type { EmailFilter, MailStore } from "../../store/store.js";
import { authenticate, resolveTargetAccount } from "../auth.js";
import { parseFilterDate } from "../dates.js";
import { pagingFields, parsePageRequest } from "../paging.js";
import { sendList, sendResource } from "../representation.js";
import { bodyParams } from "../request-body.js";
import { API_BASE, emailAttemptResource, emailMessageResource, emailMessagesPath } from "../resources.js";

interface Deps {
  store: MailStore;
  accounts: AccountService;
  emails: EmailMessageService;
}

type AccountParams = { Params: { accountSid: string } };
type MessageParams = { Params: { accountSid: string; sid: string } };

export function registerEmailMessageRoutes(app: FastifyInstance, deps: Deps): void {
  const base = `${API_BASE}/Accounts/:accountSid/Email/Messages`;
  const preHandler = authenticate(deps.accounts);

  app.post<AccountParams>(base, { preHandler }, async (request, reply) => {
    const account = await resolveTargetAccount(deps.accounts, request.actor, request.params.accountSid);
    if (account.status !== "active") {
      throw new ApiError(
        "AccountNotActive",
        `Account ${account.sid} is ${account.status}; it cannot send email.`,
      );
    }
    const message = await deps.emails.accept(account.sid, bodyParams(request));
    // Restcomm answers 200, not 201, with the message echoed back.
    return sendResource(request, reply, emailMessageResource(message));
  });

  app.get<AccountParams>(base, { preHandler }, async (request, reply) => {
    const account = await resolveTargetAccount(deps.accounts, request.actor, request.params.accountSid);
    const query = request.query as Record<string, unknown>;
    const page = parsePageRequest(query);
    const { filter, echoed } = parseFilter(account.sid, query);
    const result = await deps.store.listEmails(filter, page.page * page.pageSize, page.pageSize);
    const path = `${emailMessagesPath(account.sid)}.json`;
    return sendList(request, reply, {
      element: "EmailMessages",
      jsonKey: "messages",
      paging: pagingFields(path, echoed, page, result.total, result.rows.length),
      items: result.rows.map(emailMessageResource),
    });
  });

  app.get<MessageParams>(`${base}/:sid`, { preHandler }, async (request, reply) => {
    const message = await findOwnMessage(deps, request);
    return sendResource(request, reply, emailMessageResource(message));
  });

  app.get<MessageParams>(`${base}/:sid/Attempts`, { preHandler }, async (request, reply) => {
    const message = await findOwnMessage(deps, request);
    const attempts = await deps.store.listAttempts(message.sid);
    return sendList(request, reply, {
      element: "Attempts",
      jsonKey: "attempts",
      paging: undefined,
      items: attempts.map(emailAttemptResource),
    });
  });

  app.get<MessageParams>(`${base}/:sid/Mime`, { preHandler }, async (request, reply) => {
    const message = await findOwnMessage(deps, request);
    const raw = await deps.store.findMime(message.sid);
    if (raw === undefined) {
      throw new ApiError(
        "MimeNotAvailable",
        `Message ${message.sid} has not been composed yet (status ${message.status}); its MIME exists from the first delivery attempt on.`,
      );
    }
    return reply.type("message/rfc822").send(raw);
  });
}

/** The message, only if it belongs to an account the caller acts for; otherwise a 404 that reveals nothing. */
async function findOwnMessage(deps: Deps, request: FastifyRequest<MessageParams>) {
  const account = await resolveTargetAccount(deps.accounts, request.actor, request.params.accountSid);
  const message = isSid(request.params.sid, "EM")
    ? await deps.store.findEmail(account.sid, request.params.sid)
    : undefined;
  if (!message)
    throw new ApiError(
      "MessageNotFound",
      `No email message ${request.params.sid} in account ${account.sid}.`,
    );
  return message;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f]/;

function parseFilter(accountSid: string, query: Record<string, unknown>) {
  const filter: EmailFilter = { accountSid };
  const echoed: Array<[string, string]> = [];
  const text = (name: string): string | undefined => {
    const value = query[name];
    if (value === undefined || value === "") return undefined;
    if (typeof value !== "string") throw new ApiError("InvalidFilter", `${name} must be given once.`);
    if (CONTROL.test(value))
      throw new ApiError("InvalidFilter", `${name} must not contain control characters.`);
    echoed.push([name, value]);
    return value;
  };
  filter.to = text("To");
  filter.from = text("From");
  const status = text("Status");
  if (status !== undefined) {
    if (!isMessageStatus(status)) {
      throw new ApiError("InvalidFilter", `Status "${status}" is not one of ${MESSAGE_STATUSES.join(", ")}.`);
    }
    filter.status = status;
  }
  const start = text("StartTime");
  if (start !== undefined) filter.createdFrom = filterDate("StartTime", start).start;
  const end = text("EndTime");
  if (end !== undefined) filter.createdBefore = filterDate("EndTime", end).end;
  return { filter, echoed };
}

function filterDate(name: string, value: string) {
  const parsed = parseFilterDate(value);
  if (!parsed) {
    throw new ApiError(
      "InvalidFilter",
      `${name} "${value}" is not a date; use yyyy-MM-dd or an ISO 8601 date-time.`,
    );
  }
  return parsed;
}
