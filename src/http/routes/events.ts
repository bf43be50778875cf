import type { FastifyInstance } from "fastify";
import Type, { type Static } from "typebox";
import { ApiError } from "../../domain/errors.js";
import { isSid } from "../../domain/ids.js";
import { quoteInput } from "../../domain/quote.js";
import { EVENT_TYPES } from "../../events/types.js";
import { EventModel } from "../../model/event.js";
import { emailMessagesPath, eventsPath } from "../../model/paths.js";
import type { EventFilter, MailStore } from "../../store/types.js";
import { eventTypeList, queryText, timeRange } from "../event-filters.js";
import { PagingQuery, pagingFields, pagingListSchema, parsePageRequest } from "../paging.js";
import { sendList, sendResource } from "../representation.js";
import { AccountParams, errorResponses, JSON_AND_XML, NoQuery } from "../route-schemas.js";

const ListQuery = Type.Object(
  {
    ...PagingQuery,
    Type: Type.Optional(
      Type.String({ description: `Only these types, comma-separated: ${EVENT_TYPES.join(", ")}.` }),
    ),
    StartTime: Type.Optional(Type.String({ description: "Created on or after: yyyy-MM-dd or ISO 8601." })),
    EndTime: Type.Optional(
      Type.String({ description: "Created before the end of: yyyy-MM-dd or ISO 8601." }),
    ),
    MessageSid: Type.Optional(Type.String({ description: "Only this message's events (EM…)." })),
  },
  { additionalProperties: false },
);

const MessagePagingQuery = Type.Object({ ...PagingQuery }, { additionalProperties: false });

const EventParams = Type.Object({
  accountSid: Type.String({ description: "The account's SID (AC…) or email address." }),
  sid: Type.String({ description: "The event's SID (EV…)." }),
});

const MessageParams = Type.Object({
  accountSid: Type.String({ description: "The account's SID (AC…) or email address." }),
  sid: Type.String({ description: "The message's SID (EM…)." }),
});

/**
 * `/Accounts/{AccountSid}/Events` and `/Accounts/{AccountSid}/Email/Messages/{Sid}/Events` (in the
 * authenticated context): what happened to an account's messages, read in SQLite's reader thread.
 */
export async function eventRoutes(app: FastifyInstance, deps: { store: MailStore }): Promise<void> {
  const tags = ["Events"];
  const { store } = deps;

  app.get<{ Params: Static<typeof AccountParams> }>(
    eventsPath(":accountSid"),
    {
      schema: {
        tags,
        summary: "List an account's events",
        description: "Newest first, with Restcomm's paging; filters Type, StartTime, EndTime, MessageSid.",
        params: AccountParams,
        querystring: ListQuery,
        produces: JSON_AND_XML,
        response: { 200: pagingListSchema("events", EventModel.schema), ...errorResponses },
      },
    },
    async (request, reply) => {
      const account = request.account;
      const query = request.query as Record<string, unknown>;
      const page = parsePageRequest(query);
      const filter: EventFilter = { accountSid: account.sid };
      const echoed: Array<[string, string]> = [];
      const text = (name: string) => {
        const value = queryText(query, name);
        if (value !== undefined) echoed.push([name, value]);
        return value;
      };
      const type = text("Type");
      if (type !== undefined) filter.types = eventTypeList("InvalidFilter", type);
      const { from, before } = timeRange("InvalidFilter", text("StartTime"), text("EndTime"));
      if (from !== undefined) filter.createdFrom = from;
      if (before !== undefined) filter.createdBefore = before;
      const messageSid = text("MessageSid");
      if (messageSid !== undefined) {
        if (!isSid(messageSid, "EM")) {
          throw new ApiError(
            "InvalidFilter",
            `MessageSid ${quoteInput(messageSid)} is not a message SID (EM…).`,
          );
        }
        filter.messageSid = messageSid;
      }
      const result = await store.listEvents(filter, page.page * page.pageSize, page.pageSize, "desc");
      return sendList(request, reply, {
        element: "Events",
        jsonKey: "events",
        paging: pagingFields(
          `${eventsPath(account.sid)}.json`,
          echoed,
          page,
          result.total,
          result.rows.length,
        ),
        items: result.rows.map((row) => EventModel.render(row)),
      });
    },
  );

  app.get<{ Params: Static<typeof EventParams> }>(
    `${eventsPath(":accountSid")}/:sid`,
    {
      schema: {
        tags,
        summary: "Get an event",
        params: EventParams,
        querystring: NoQuery,
        produces: JSON_AND_XML,
        response: { 200: EventModel.schema, ...errorResponses },
      },
    },
    async (request, reply) => {
      const account = request.account;
      const sid = request.params.sid;
      const event = isSid(sid, "EV") ? await store.findEvent(account.sid, sid) : undefined;
      if (!event)
        throw new ApiError("EventNotFound", `No event ${quoteInput(sid)} in account ${account.sid}.`);
      return sendResource(request, reply, EventModel.render(event));
    },
  );

  app.get<{ Params: Static<typeof MessageParams> }>(
    `${emailMessagesPath(":accountSid")}/:sid/Events`,
    {
      schema: {
        tags,
        summary: "List a message's events",
        description: "In the order they happened (oldest first), with Restcomm's paging.",
        params: MessageParams,
        querystring: MessagePagingQuery,
        produces: JSON_AND_XML,
        response: { 200: pagingListSchema("events", EventModel.schema), ...errorResponses },
      },
    },
    async (request, reply) => {
      const account = request.account;
      const sid = request.params.sid;
      const page = parsePageRequest(request.query as Record<string, unknown>);
      const notFound = () =>
        new ApiError("MessageNotFound", `No email message ${quoteInput(sid)} in account ${account.sid}.`);
      if (!isSid(sid, "EM")) throw notFound();
      const filter = { accountSid: account.sid, messageSid: sid };
      const result = await store.listEvents(filter, page.page * page.pageSize, page.pageSize, "asc");
      // A message has at least its email.accepted event, unless it was stored before events existed:
      // only an empty answer asks whether the message is there at all.
      if (result.total === 0 && !(await store.findEmail(account.sid, sid))) throw notFound();
      const path = `${emailMessagesPath(account.sid)}/${sid}/Events.json`;
      return sendList(request, reply, {
        element: "Events",
        jsonKey: "events",
        paging: pagingFields(path, [], page, result.total, result.rows.length),
        items: result.rows.map((row) => EventModel.render(row)),
      });
    },
  );
}
