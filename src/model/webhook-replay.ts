import { iso8601 } from "../http/dates.js";
import type { ReplayResult } from "../services/webhooks.js";
import { field, ResourceModel, Schemas } from "./resource.js";

/** The answer to a replay: what was queued for the webhook (delivered by the webhook sender, due now). */
export const WebhookReplayModel = new ResourceModel<ReplayResult>(
  "Replay",
  [
    field("webhook_sid", Schemas.text, "The webhook the events go to.", (r) => r.webhook.sid),
    field(
      "event_sid",
      Schemas.text,
      "A delivery's replay: the event queued again.",
      (r) => r.eventSid ?? null,
    ),
    field("start_time", Schemas.iso8601, "A range's replay: its start (included).", (r) =>
      r.from === undefined ? null : iso8601(r.from),
    ),
    field("end_time", Schemas.iso8601, "A range's replay: its end (excluded).", (r) =>
      r.before === undefined ? null : iso8601(r.before),
    ),
    field("types", Schemas.text, "A range's replay: the event types replayed, comma-separated.", (r) =>
      r.types === undefined ? null : r.types.join(","),
    ),
    field("queued", Schemas.integer, "How many deliveries were queued.", (r) => r.queued),
  ],
  "What a replay queued.",
);
