import type { FastifyInstance } from "fastify";
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
import { sendResource } from "../representation.js";
import { AccountParams, errorResponses } from "../route-schemas.js";
import { NoBody, requireParameters, resourceParams, resourceSchemas, sendPage } from "./account-resource.js";

interface Deps {
  store: MailStore;
  webhooks: WebhookService;
}

const WebhookParams = resourceParams("webhook", "WH");
const DeliveryParams = resourceParams("webhook", "WH", {
  deliverySid: Type.String({ description: "The delivery's SID (DL…)." }),
});

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

type AccountRoute = { Params: Static<typeof AccountParams> };
type WebhookRoute = { Params: Static<typeof WebhookParams> };
type DeliveryRoute = { Params: Static<typeof DeliveryParams> };

/**
 * `/Accounts/{AccountSid}/Webhooks` (in the authenticated context): create, list, get, update, delete,
 * rotate the secret; a webhook's Deliveries and their replay, and replay by time range.
 */
export async function webhookRoutes(app: FastifyInstance, deps: Deps): Promise<void> {
  const base = `${webhooksPath(":accountSid")}`;
  const schemas = resourceSchemas(["Webhooks"], WebhookModel.schema);
  const { webhooks } = deps;

  app.post<AccountRoute & { Body: Static<typeof CreateWebhookParams> }>(
    base,
    schemas.route(
      AccountParams,
      {
        summary: "Create a webhook",
        description:
          "Registers a URL that receives the account's events (Events: which types; all by default). The answer carries the signing secret (whsec_…): it is shown this once.",
      },
      { body: CreateWebhookParams, preValidation: requireParameters("WebhookUrlMissing", ["Url"]) },
    ),
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
    schemas.list(
      AccountParams,
      {
        summary: "List webhooks",
        description: "Oldest first, with Restcomm's paging. Secrets are never listed.",
      },
      "webhooks",
    ),
    async (request, reply) => {
      const account = request.account;
      return sendPage(request, reply, {
        element: "Webhooks",
        jsonKey: "webhooks",
        path: webhooksPath(account.sid),
        fetch: (offset, limit) => deps.store.listWebhooks(account.sid, offset, limit),
        render: (webhook) => WebhookModel.render({ webhook }),
      });
    },
  );

  app.get<WebhookRoute>(
    `${base}/:sid`,
    schemas.route(WebhookParams, { summary: "Get a webhook" }),
    async (request, reply) => {
      const webhook = await webhooks.find(request.account.sid, request.params.sid);
      return sendResource(request, reply, WebhookModel.render({ webhook }));
    },
  );

  app.post<WebhookRoute & { Body: Static<typeof UpdateWebhookParams> }>(
    `${base}/:sid`,
    schemas.route(
      WebhookParams,
      {
        summary: "Update a webhook",
        description:
          "Changes the parameters given (Url, Events, Enabled); the others stay. Enabled=true on a disabled webhook starts it again with a clean slate (its failure clock restarts).",
      },
      { body: UpdateWebhookParams },
    ),
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
    schemas.deletion(WebhookParams, {
      summary: "Delete a webhook",
      description: "Deletes it with its queued deliveries and its delivery log. Answers 204, no body.",
    }),
    async (request, reply) => {
      assertMayAct(request, "manage webhooks");
      await webhooks.delete(request.account.sid, request.params.sid);
      return reply.code(204).send();
    },
  );

  app.post<WebhookRoute>(
    `${base}/:sid/Secret`,
    schemas.route(
      WebhookParams,
      {
        summary: "Rotate a webhook's signing secret",
        description:
          "Issues a new signing secret, shown this once in the answer; deliveries from now on are signed with it, and the old one signs nothing more.",
      },
      { body: NoBody },
    ),
    async (request, reply) => {
      assertMayAct(request, "manage webhooks");
      const issued = await webhooks.rotateSecret(request.account.sid, request.params.sid);
      return sendResource(request, reply, WebhookModel.render(issued));
    },
  );

  app.get<WebhookRoute>(
    `${base}/:sid/Deliveries`,
    schemas.list(
      WebhookParams,
      { summary: "List a webhook's delivery attempts", description: "Newest first, with Restcomm's paging." },
      "deliveries",
      WebhookDeliveryModel.schema,
    ),
    async (request, reply) => {
      const account = request.account;
      const { sid } = request.params;
      return sendPage(request, reply, {
        element: "Deliveries",
        jsonKey: "deliveries",
        path: `${webhookPath(account.sid, sid)}/Deliveries`,
        // The webhook first: an unknown one is a 404, not an empty list (after the paging's own checks).
        fetch: async (offset, limit) => {
          const webhook = await webhooks.find(account.sid, sid);
          return deps.store.listWebhookDeliveries(account.sid, webhook.sid, offset, limit);
        },
        render: (row) => WebhookDeliveryModel.render(row),
      });
    },
  );

  app.get<DeliveryRoute>(
    `${base}/:sid/Deliveries/:deliverySid`,
    schemas.route(
      DeliveryParams,
      { summary: "Get one delivery attempt" },
      { response: { 200: WebhookDeliveryModel.schema, ...errorResponses } },
    ),
    async (request, reply) => {
      const { sid, deliverySid } = request.params;
      const delivery = await webhooks.findDelivery(request.account.sid, sid, deliverySid);
      return sendResource(request, reply, WebhookDeliveryModel.render(delivery));
    },
  );

  const replayResponse = { 200: WebhookReplayModel.schema, ...errorResponses };

  app.post<DeliveryRoute>(
    `${base}/:sid/Deliveries/:deliverySid/Replay`,
    schemas.route(
      DeliveryParams,
      {
        summary: "Deliver a delivery's event again",
        description:
          "Queues the event of this delivery to this webhook again, due now (a new delivery with attempt 1; the same webhook-id, so receivers can tell a repeat).",
      },
      { body: NoBody, response: replayResponse },
    ),
    async (request, reply) => {
      assertMayAct(request, "manage webhooks");
      const { sid, deliverySid } = request.params;
      const result = await webhooks.replayDelivery(request.account.sid, sid, deliverySid);
      return sendResource(request, reply, WebhookReplayModel.render(result));
    },
  );

  app.post<WebhookRoute & { Body: Static<typeof ReplayRangeParams> }>(
    `${base}/:sid/Replay`,
    schemas.route(
      WebhookParams,
      {
        summary: "Deliver a time range's events again",
        description:
          "Queues every event of the account created from StartTime to EndTime that the webhook receives (and of Type, when given), oldest first, due now; answers how many. At most 10,000 per call: more is refused (14012) and nothing is queued.",
      },
      {
        body: ReplayRangeParams,
        response: replayResponse,
        preValidation: requireParameters(
          "InvalidReplayRange",
          ["StartTime", "EndTime"],
          ": a replay needs a time range",
        ),
      },
    ),
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
