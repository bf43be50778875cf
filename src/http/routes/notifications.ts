import type { FastifyInstance } from "fastify";
import Type from "typebox";
import { ApiError } from "../../domain/errors.js";
import { containsControl, describeUnsafeCharacter } from "../../domain/header-rules.js";
import { isSid } from "../../domain/ids.js";
import { quoteInput } from "../../domain/quote.js";
import { NotificationModel } from "../../model/notification.js";
import { API_BASE, notificationsPath } from "../../model/paths.js";
import type { MailStore, NotificationFilter } from "../../store/types.js";
import { parseFilterDate } from "../dates.js";
import { PagingQuery, pagingFields, pagingListSchema, parsePageRequest } from "../paging.js";
import { sendList, sendResource } from "../representation.js";
import { AccountParams, errorResponses, JSON_AND_XML, NoQuery } from "../route-schemas.js";

const NotificationParams = Type.Object({
  accountSid: Type.String({ description: "The account's SID (or email address)." }),
  sid: Type.String({ description: "The notification's SID (NO…)." }),
});

const ListQuery = Type.Object(
  {
    ...PagingQuery,
    ErrorCode: Type.Optional(Type.String({ description: "Only this error code, e.g. 13101." })),
    Log: Type.Optional(Type.String({ description: "0 errors only, 1 warnings only." })),
    StartTime: Type.Optional(Type.String({ description: "Written on or after: yyyy-MM-dd or ISO 8601." })),
    EndTime: Type.Optional(
      Type.String({ description: "Written before the end of: yyyy-MM-dd or ISO 8601." }),
    ),
    MessageText: Type.Optional(
      Type.String({ description: "Whose message_text contains this text (case-insensitive)." }),
    ),
    RequestUrl: Type.Optional(Type.String({ description: "Whose request_url is exactly this URL." })),
  },
  { additionalProperties: false },
);

/** `/Accounts/{AccountSid}/Notifications` (in the authenticated context): Restcomm's notification log. */
export async function notificationRoutes(app: FastifyInstance, deps: { store: MailStore }): Promise<void> {
  const base = `${API_BASE}/Accounts/:accountSid/Notifications`;
  const tags = ["Notifications"];

  app.get(
    base,
    {
      schema: {
        tags,
        summary: "List notifications",
        description:
          "Newest first, with Restcomm's paging: failed messages (log 0), deferred deliveries (log 1), webhook failures.",
        params: AccountParams,
        querystring: ListQuery,
        produces: JSON_AND_XML,
        response: { 200: pagingListSchema("notifications", NotificationModel.schema), ...errorResponses },
      },
    },
    async (request, reply) => {
      const account = request.account;
      const query = request.query as Record<string, string | undefined>;
      const page = parsePageRequest(query);
      const { filter, echoed } = parseFilter(account.sid, query);
      const result = await deps.store.listNotifications(filter, page.page * page.pageSize, page.pageSize);
      return sendList(request, reply, {
        element: "Notifications",
        jsonKey: "notifications",
        paging: pagingFields(
          `${notificationsPath(account.sid)}.json`,
          echoed,
          page,
          result.total,
          result.rows.length,
        ),
        items: result.rows.map((row) => NotificationModel.render(row)),
      });
    },
  );

  app.get<{ Params: { accountSid: string; sid: string } }>(
    `${base}/:sid`,
    {
      schema: {
        tags,
        summary: "Get a notification",
        params: NotificationParams,
        querystring: NoQuery,
        produces: JSON_AND_XML,
        response: { 200: NotificationModel.schema, ...errorResponses },
      },
    },
    async (request, reply) => {
      const account = request.account;
      const sid = request.params.sid;
      const row = isSid(sid, "NO") ? await deps.store.findNotification(account.sid, sid) : undefined;
      if (!row) {
        throw new ApiError(
          "NotificationNotFound",
          `No notification ${quoteInput(sid)} in account ${account.sid}; list them at ${notificationsPath(account.sid)}.json.`,
        );
      }
      return sendResource(request, reply, NotificationModel.render(row));
    },
  );
}

/** Restcomm's filters; each one given is echoed in the paging URIs, so that next_page_uri keeps it. */
function parseFilter(accountSid: string, query: Record<string, string | undefined>) {
  const filter: NotificationFilter = { accountSid };
  const echoed: Array<[string, string]> = [];
  const text = (name: string): string | undefined => {
    const value = query[name];
    if (value === undefined || value === "") return undefined;
    if (containsControl(value)) {
      throw new ApiError("InvalidNotificationFilter", `${name} must not contain control characters.`);
    }
    // Echoed in the page's URIs, and XML cannot carry these.
    const unsafe = describeUnsafeCharacter(value);
    if (unsafe !== undefined) throw new ApiError("InvalidNotificationFilter", `${name} contains ${unsafe}.`);
    echoed.push([name, value]);
    return value;
  };
  const errorCode = text("ErrorCode");
  if (errorCode !== undefined) {
    if (!/^\d{1,9}$/.test(errorCode)) {
      throw new ApiError(
        "InvalidNotificationFilter",
        `ErrorCode ${quoteInput(errorCode)} is not an error code; give its number, e.g. ErrorCode=13101.`,
      );
    }
    filter.errorCode = Number(errorCode);
  }
  const log = text("Log");
  if (log !== undefined) {
    if (log !== "0" && log !== "1") {
      throw new ApiError(
        "InvalidNotificationFilter",
        `Log ${quoteInput(log)} must be 0 (errors) or 1 (warnings).`,
      );
    }
    filter.log = Number(log);
  }
  const start = text("StartTime");
  if (start !== undefined) filter.createdFrom = filterDate("StartTime", start).start;
  const end = text("EndTime");
  if (end !== undefined) filter.createdBefore = filterDate("EndTime", end).end;
  filter.messageText = text("MessageText");
  filter.requestUrl = text("RequestUrl");
  return { filter, echoed };
}

function filterDate(name: string, value: string) {
  const parsed = parseFilterDate(value);
  if (!parsed) {
    throw new ApiError(
      "InvalidNotificationFilter",
      `${name} ${quoteInput(value)} is not a date; use yyyy-MM-dd or an ISO 8601 date-time.`,
    );
  }
  return parsed;
}
