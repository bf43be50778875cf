import { rfc2822 } from "../http/dates.js";
import type { WebhookDeliveryRow } from "../store/types.js";
import { field, ResourceModel, Schemas } from "./resource.js";
import { webhookPath } from "./webhook.js";

export function deliveryPath(row: WebhookDeliveryRow): string {
  return `${webhookPath(row.account_sid, row.webhook_sid)}/Deliveries/${row.sid}`;
}

/** One attempt to deliver an event to a webhook (written by the webhook sender). */
export const WebhookDeliveryModel = new ResourceModel<WebhookDeliveryRow>(
  "Delivery",
  [
    field("sid", Schemas.text, "DL + 32 hex digits.", (d) => d.sid),
    field("webhook_sid", Schemas.text, "The webhook.", (d) => d.webhook_sid),
    field("event_sid", Schemas.text, "The event delivered (also the webhook-id header).", (d) => d.event_sid),
    field("event_type", Schemas.text, "The event's type.", (d) => d.event_type),
    field("message_sid", Schemas.text, "The event's message.", (d) => d.message_sid),
    field("attempt", Schemas.integer, "1 for the first attempt of this delivery.", (d) => d.attempt),
    field("date_created", Schemas.rfc2822, "When the attempt was made.", (d) => rfc2822(d.date_created)),
    field(
      "status_code",
      Schemas.integer,
      "The receiver's HTTP status, if it answered.",
      (d) => d.status_code,
    ),
    field("latency_ms", Schemas.integer, "How long the attempt took, in milliseconds.", (d) => d.latency_ms),
    field("outcome", Schemas.text, "delivered, retrying or failed (given up).", (d) => d.outcome),
    field("error", Schemas.text, "Why it did not deliver, when it did not.", (d) => d.error),
    field(
      "response_body",
      Schemas.text,
      "The start of the receiver's answer (at most 1 KiB).",
      (d) => d.response_body,
    ),
    field("uri", Schemas.text, "This resource.", (d) => `${deliveryPath(d)}.json`),
  ],
  "One attempt to deliver an event to a webhook.",
);
