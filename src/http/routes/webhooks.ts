import type { FastifyInstance, FastifyRequest } from "fastify";
import Type, { type Static } from "typebox";
import { ApiError } from "../../domain/errors.js";
import { webhooksPath } from "../../model/paths.js";
import { CreateWebhookParams, UpdateWebhookParams, WebhookModel, webhookPath } from "../../model/webhook.js";
import { WebhookDeliveryModel } from "../../model/webhook-delivery.js";
import { WebhookReplayModel } from "../../model/webhook-replay.js";
import type { WebhookService } from "../../services/webhooks.js";
import type { MailStore } from "../../store/types.js";
import { assertMayAct } from "../auth.js";
import { eventTypeList, queryText, timeRange } from "../event-filters.js";
import { PagingQuery, pagingFields, pagingListSchema, parsePageRequest } from "../paging.js";
import { sendList, sendResource } from "../representation.js";
import { AccountParams, errorResponses, FORM_AND_JSON, JSON_AND_XML, NoQuery } from "../route-schemas.js";

interface Deps {
  store: MailStore;
  webhooks: WebhookService;
}

const WebhookParams = Type.Object({
  accountSid: Type.String({ description: "The account's SID (AC…) or email address." }),
  sid: Type.String({ description: "The webhook's SID (WH…)." }),
});

const DeliveryParams = Type.Object({
  accountSid: Type.String({ description: "The account's SID (AC…) or email address." }),
  sid: Type.String({ description: "The webhook's SID (WH…)." }),
  deliverySid: Type.String({ description: "The delivery's SID (DL…)." }),
});

/** A POST that takes no parameters: an empty form or JSON object, or no body at all. */
const NoBody = Type.Object({}, { additionalProperties: false });

const ReplayRangeParams = Type.Object(
  {
    StartTime: Type.String({ description: "Events created on or after: yyyy-MM-dd or ISO 8601." }),
    EndTime: Type.String({ description: "Events created before the end of: yyyy-MM-dd or ISO 8601." }),
    Type: Type.Optional(
      Type.String({
        description: "Only these event types (comma-separated); default every type the webhook receives.",
      }),
    ),
  },
  { additionalProperties: false },
);

const ListQuery = Type.Object({ ...PagingQuery }, { additionalProperties: false });

type AccountRoute = { Params: Static<typeof AccountParams> };
type WebhookRoute = { Params: Static<typeof WebhookParams> };
type DeliveryRoute = { Params: Static<typeof DeliveryParams> };

/** A POST's body may be absent (nothing to change): validate it as an empty object instead of null. */
async function absentBodyIsEmpty(request: FastifyRequest): Promise<void> {
  request.body ??= {};
}

/**
 * `/Accounts/{AccountSid}/Webhooks` (in the authenticated context): create, list, get, update, delete,
 * rotate the secret; a webhook's Deliveries and their replay, and replay by time range.
 */
export async function webhookRoutes(app: FastifyInstance, deps: Deps): Promise<void> {
  const base = `${webhooksPath(":accountSid")}`;
  const tags = ["Webhooks"];
  const one = { 200: WebhookModel.schema, ...errorResponses };
  const { webhooks } = deps;

  app.post<AccountRoute & { Body: Static<typeof CreateWebhookParams> }>(
    base,
    {
      schema: {
        tags,
        summary: "Create a webhook",
        description:
          "Registers a URL that receives the account's events (Events: which types; all by default). The answer carries the signing secret (whsec_…): it is shown this once.",
        params: AccountParams,
        querystring: NoQuery,
        body: CreateWebhookParams,
        consumes: FORM_AND_JSON,
        produces: JSON_AND_XML,
        response: one,
      },
      preValidation: async (request) => {
        await absentBodyIsEmpty(request);
        // Restcomm's message for a missing required parameter, before the schema's.
        const body = request.body as Record<string, unknown>;
        if (body.Url === undefined || body.Url === null) {
          throw new ApiError("WebhookUrlMissing", "Url can not be null.");
        }
      },
    },
    async (request, reply) => {
      assertMayAct(request, "manage webhooks");
      const { Url, Events, Enabled } = request.body;
      const issued = await webhooks.create(request.account.sid, {
        url: Url,
        events: Events,
        enabled: Enabled,
      });
      return sendResource(request, reply, WebhookModel.render(issued));
    },
  );

  app.get<AccountRoute>(
    base,
    {
      schema: {
        tags,
        summary: "List webhooks",
        description: "Oldest first, with Restcomm's paging. Secrets are never listed.",
        params: AccountParams,
        querystring: ListQuery,
        produces: JSON_AND_XML,
        response: { 200: pagingListSchema("webhooks", WebhookModel.schema), ...errorResponses },
      },
    },
    async (request, reply) => {
      const account = request.account;
      const page = parsePageRequest(request.query as Record<string, unknown>);
      const result = await deps.store.listWebhooks(account.sid, page.page * page.pageSize, page.pageSize);
      return sendList(request, reply, {
        element: "Webhooks",
        jsonKey: "webhooks",
        paging: pagingFields(`${webhooksPath(account.sid)}.json`, [], page, result.total, result.rows.length),
        items: result.rows.map((webhook) => WebhookModel.render({ webhook })),
      });
    },
  );

  const webhookSchema = (summary: string, extra: Record<string, unknown> = {}) => ({
    schema: {
      tags,
      summary,
      params: WebhookParams,
      querystring: NoQuery,
      produces: JSON_AND_XML,
      response: one,
      ...extra,
    },
  });

  app.get<WebhookRoute>(`${base}/:sid`, webhookSchema("Get a webhook"), async (request, reply) => {
    const webhook = await webhooks.find(request.account.sid, request.params.sid);
    return sendResource(request, reply, WebhookModel.render({ webhook }));
  });

  app.post<WebhookRoute & { Body: Static<typeof UpdateWebhookParams> }>(
    `${base}/:sid`,
    {
      ...webhookSchema("Update a webhook", {
        description:
          "Changes the parameters given (Url, Events, Enabled); the others stay. Enabled=true on a disabled webhook starts it again with a clean slate (its failure clock restarts).",
        body: UpdateWebhookParams,
        consumes: FORM_AND_JSON,
      }),
      preValidation: absentBodyIsEmpty,
    },
    async (request, reply) => {
      assertMayAct(request, "manage webhooks");
      const { Url, Events, Enabled } = request.body;
      const webhook = await webhooks.update(request.account.sid, request.params.sid, {
        url: Url,
        events: Events,
        enabled: Enabled,
      });
      return sendResource(request, reply, WebhookModel.render({ webhook }));
    },
  );

  app.delete<WebhookRoute>(
    `${base}/:sid`,
    {
      schema: {
        tags,
        summary: "Delete a webhook",
        description: "Deletes it with its queued deliveries and its delivery log. Answers 204, no body.",
        params: WebhookParams,
        querystring: NoQuery,
        response: { 204: Type.Null({ description: "Deleted." }), ...errorResponses },
      },
    },
    async (request, reply) => {
      assertMayAct(request, "manage webhooks");
      await webhooks.delete(request.account.sid, request.params.sid);
      return reply.code(204).send();
    },
  );

  app.post<WebhookRoute>(
    `${base}/:sid/Secret`,
    {
      ...webhookSchema("Rotate a webhook's signing secret", {
        description:
          "Issues a new signing secret, shown this once in the answer; deliveries from now on are signed with it, and the old one signs nothing more.",
        body: NoBody,
        consumes: FORM_AND_JSON,
      }),
      preValidation: absentBodyIsEmpty,
    },
    async (request, reply) => {
      assertMayAct(request, "manage webhooks");
      const issued = await webhooks.rotateSecret(request.account.sid, request.params.sid);
      return sendResource(request, reply, WebhookModel.render(issued));
    },
  );

  app.get<WebhookRoute>(
    `${base}/:sid/Deliveries`,
    {
      schema: {
        tags,
        summary: "List a webhook's delivery attempts",
        description: "Newest first, with Restcomm's paging.",
        params: WebhookParams,
        querystring: ListQuery,
        produces: JSON_AND_XML,
        response: { 200: pagingListSchema("deliveries", WebhookDeliveryModel.schema), ...errorResponses },
      },
    },
    async (request, reply) => {
      const account = request.account;
      const page = parsePageRequest(request.query as Record<string, unknown>);
      const webhook = await webhooks.find(account.sid, request.params.sid);
      const result = await deps.store.listWebhookDeliveries(
        account.sid,
        webhook.sid,
        page.page * page.pageSize,
        page.pageSize,
      );
      const path = `${webhookPath(account.sid, webhook.sid)}/Deliveries.json`;
      return sendList(request, reply, {
        element: "Deliveries",
        jsonKey: "deliveries",
        paging: pagingFields(path, [], page, result.total, result.rows.length),
        items: result.rows.map((row) => WebhookDeliveryModel.render(row)),
      });
    },
  );

  app.get<DeliveryRoute>(
    `${base}/:sid/Deliveries/:deliverySid`,
    {
      schema: {
        tags,
        summary: "Get one delivery attempt",
        params: DeliveryParams,
        querystring: NoQuery,
        produces: JSON_AND_XML,
        response: { 200: WebhookDeliveryModel.schema, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { sid, deliverySid } = request.params;
      const delivery = await webhooks.findDelivery(request.account.sid, sid, deliverySid);
      return sendResource(request, reply, WebhookDeliveryModel.render(delivery));
    },
  );

  const replayResponse = { 200: WebhookReplayModel.schema, ...errorResponses };

  app.post<DeliveryRoute>(
    `${base}/:sid/Deliveries/:deliverySid/Replay`,
    {
      schema: {
        tags,
        summary: "Deliver a delivery's event again",
        description:
          "Queues the event of this delivery to this webhook again, due now (a new delivery with attempt 1; the same webhook-id, so receivers can tell a repeat).",
        params: DeliveryParams,
        querystring: NoQuery,
        body: NoBody,
        consumes: FORM_AND_JSON,
        produces: JSON_AND_XML,
        response: replayResponse,
      },
      preValidation: absentBodyIsEmpty,
    },
    async (request, reply) => {
      assertMayAct(request, "manage webhooks");
      const { sid, deliverySid } = request.params;
      const result = await webhooks.replayDelivery(request.account.sid, sid, deliverySid);
      return sendResource(request, reply, WebhookReplayModel.render(result));
    },
  );

  app.post<WebhookRoute & { Body: Static<typeof ReplayRangeParams> }>(
    `${base}/:sid/Replay`,
    {
      schema: {
        tags,
        summary: "Deliver a time range's events again",
        description:
          "Queues every event of the account created from StartTime to EndTime that the webhook receives (and of Type, when given), oldest first, due now; answers how many. At most 10,000 per call: more is refused (14012) and nothing is queued.",
        params: WebhookParams,
        querystring: NoQuery,
        body: ReplayRangeParams,
        consumes: FORM_AND_JSON,
        produces: JSON_AND_XML,
        response: replayResponse,
      },
      preValidation: async (request) => {
        await absentBodyIsEmpty(request);
        const body = request.body as Record<string, unknown>;
        for (const name of ["StartTime", "EndTime"]) {
          if (body[name] === undefined || body[name] === null) {
            throw new ApiError("InvalidReplayRange", `${name} can not be null: a replay needs a time range.`);
          }
        }
      },
    },
    async (request, reply) => {
      assertMayAct(request, "manage webhooks");
      const body = request.body;
      const range = timeRange(
        "InvalidReplayRange",
        queryText(body, "StartTime", "InvalidReplayRange"),
        queryText(body, "EndTime", "InvalidReplayRange"),
      );
      if (range.from === undefined || range.before === undefined) {
        throw new ApiError(
          "InvalidReplayRange",
          "StartTime and EndTime can not be empty: a replay needs a time range.",
        );
      }
      const typeText = queryText(body, "Type", "InvalidEventType");
      const types = typeText === undefined ? undefined : eventTypeList("InvalidEventType", typeText);
      const result = await webhooks.replayRange(request.account.sid, request.params.sid, {
        from: range.from,
        before: range.before,
        types,
      });
      return sendResource(request, reply, WebhookReplayModel.render(result));
    },
  );
}
