import { rfc2822 } from "../http/dates.js";
import type { EmailEventRow } from "../store/types.js";
import { eventsPath } from "./paths.js";
import { field, ResourceModel, Schemas } from "./resource.js";

/** One event: something that happened to a message (docs/events.md). */
export const EventModel = new ResourceModel<EmailEventRow>(
  "Event",
  [
    field("sid", Schemas.text, "EV + 32 hex digits; sorting by SID sorts by creation.", (e) => e.sid),
    field("type", Schemas.text, "email.accepted, email.sent, email.deferred, email.failed, …", (e) => e.type),
    field("date_created", Schemas.rfc2822, "When it happened.", (e) => rfc2822(e.date_created)),
    field("message_sid", Schemas.text, "The message.", (e) => e.message_sid),
    field("account_sid", Schemas.text, "The message's account.", (e) => e.account_sid),
    field("recipient", Schemas.text, "The recipient it concerns, where it concerns one.", (e) => e.recipient),
    field("smtp_code", Schemas.integer, "The relay's reply code, where there was one.", (e) => e.smtp_code),
    field("response", Schemas.text, "The relay's reply, where there was one.", (e) => e.response),
    field(
      "error_code",
      Schemas.integer,
      "Why it failed or was deferred (docs/delivery.md).",
      (e) => e.error_code,
    ),
    field("error_message", Schemas.text, "The error in words.", (e) => e.error_message),
    field("retry_at", Schemas.rfc2822, "email.deferred: when the next attempt is due.", (e) =>
      e.retry_at === null ? null : rfc2822(e.retry_at),
    ),
    field("uri", Schemas.text, "This resource.", (e) => `${eventsPath(e.account_sid)}/${e.sid}.json`),
  ],
  "Something that happened to an email message, recorded in the same transaction as the change.",
);
