import { moreInfoPath } from "../domain/errors.js";
import { iso8601, rfc2822 } from "../http/dates.js";
import type { NotificationRow } from "../store/types.js";
import { API_VERSION, notificationsPath } from "./paths.js";
import { field, ResourceModel, Schemas } from "./resource.js";

/**
 * A Restcomm Notification: Restcomm's fields in its order, with `message_sid` (Mailroom's) where
 * Restcomm had `call_sid`. A notification never changes, so date_updated is date_created.
 */
export const NotificationModel = new ResourceModel<NotificationRow>(
  "Notification",
  [
    field("sid", Schemas.text, "NO + 32 hex digits.", (n) => n.sid),
    field("date_created", Schemas.rfc2822, "When it was written.", (n) => rfc2822(n.date_created)),
    field("date_updated", Schemas.rfc2822, "The same as date_created: it never changes.", (n) =>
      rfc2822(n.date_created),
    ),
    field("account_sid", Schemas.text, "The account it concerns.", (n) => n.account_sid),
    field("message_sid", Schemas.text, "The email message it concerns, if one.", (n) => n.message_sid),
    field("api_version", Schemas.text, "Always 2012-04-24.", () => API_VERSION),
    field("log", Schemas.integer, "0 an error, 1 a warning.", (n) => n.log),
    field(
      "error_code",
      Schemas.integer,
      "A Mailroom code: docs/errors.md (e.g. 13101 the relay refused the message).",
      (n) => n.error_code,
    ),
    field("more_info", Schemas.text, "The page that explains error_code.", (n) => moreInfoPath(n.error_code)),
    field("message_text", Schemas.text, "What happened and what to do, in words.", (n) => n.message_text),
    field("message_date", Schemas.iso8601, "When it happened, ISO 8601 (as Restcomm wrote it).", (n) =>
      iso8601(n.date_created),
    ),
    field("request_url", Schemas.text, "The URL Mailroom called (a webhook), if any.", (n) => n.request_url),
    field("request_method", Schemas.text, "Its HTTP method.", (n) => n.request_method),
    field("request_variables", Schemas.text, "What Mailroom sent.", (n) => n.request_variables),
    field("response_headers", Schemas.text, "What the URL answered: headers.", (n) => n.response_headers),
    field("response_body", Schemas.text, "What the URL answered: body (cut short).", (n) => n.response_body),
    field("uri", Schemas.text, "This resource.", (n) => `${notificationsPath(n.account_sid)}/${n.sid}.json`),
  ],
  "Something Mailroom wants the account to know: a message that failed (log 0), a delivery deferred (log 1), a webhook that failed or was disabled.",
);
