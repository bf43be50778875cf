import Type from "typebox";
import { rfc2822 } from "../http/dates.js";
import type { WebhookRow } from "../store/types.js";
import { webhooksPath } from "./paths.js";
import { field, ResourceModel, Schemas } from "./resource.js";

/** A webhook as shown, with its signing secret only in the answer that issued it (create, rotate). */
export interface WebhookSource {
  webhook: WebhookRow;
  secret?: string | undefined;
}

/** What a webhook's `events` shows when it receives every type, including types added later. */
export const ALL_EVENTS = "*";

const text = (description: string) => Type.String({ description });
const EnabledParam = Type.Union([Type.String(), Type.Boolean()], {
  description: "true (default) or false: a disabled webhook receives nothing.",
});
const EventsParam = text(
  "Comma-separated event types (e.g. email.sent,email.failed); absent, empty or * for every type.",
);

/** `POST /Accounts/{AccountSid}/Webhooks`. */
export const CreateWebhookParams = Type.Object(
  {
    Url: text("Where events are POSTed: an http:// or https:// URL that resolves to a public address."),
    Events: Type.Optional(EventsParam),
    Enabled: Type.Optional(EnabledParam),
  },
  { additionalProperties: false },
);

/** `POST /Accounts/{AccountSid}/Webhooks/{Sid}`: what is given changes, the rest stays. */
export const UpdateWebhookParams = Type.Object(
  {
    Url: Type.Optional(text("A new URL (checked as at creation).")),
    Events: Type.Optional(EventsParam),
    Enabled: Type.Optional(EnabledParam),
  },
  { additionalProperties: false },
);

export function webhookPath(accountSid: string, sid: string): string {
  return `${webhooksPath(accountSid)}/${sid}`;
}

export const WebhookModel = new ResourceModel<WebhookSource>(
  "Webhook",
  [
    field("sid", Schemas.text, "WH + 32 hex digits.", ({ webhook }) => webhook.sid),
    field(
      "account_sid",
      Schemas.text,
      "The account whose events it receives.",
      ({ webhook }) => webhook.account_sid,
    ),
    field("url", Schemas.text, "Where events are POSTed.", ({ webhook }) => webhook.url),
    field(
      "events",
      Schemas.text,
      "The event types it receives, comma-separated; * for every type (also those added later).",
      ({ webhook }) => webhook.events ?? ALL_EVENTS,
    ),
    field("enabled", Schemas.boolean, "false: it receives nothing.", ({ webhook }) => webhook.enabled === 1),
    field(
      "secret",
      Schemas.text,
      "The signing secret (whsec_…), only in the answer that created or rotated it.",
      ({ secret }) => secret ?? null,
    ),
    field("date_created", Schemas.rfc2822, "When it was created.", ({ webhook }) =>
      rfc2822(webhook.date_created),
    ),
    field("date_updated", Schemas.rfc2822, "When it last changed.", ({ webhook }) =>
      rfc2822(webhook.date_updated),
    ),
    field(
      "uri",
      Schemas.text,
      "This resource.",
      ({ webhook }) => `${webhookPath(webhook.account_sid, webhook.sid)}.json`,
    ),
  ],
  "A webhook: a URL that receives an account's events, signed (Standard Webhooks).",
);
