import Type from "typebox";
import { rfc2822 } from "../http/dates.js";
import type { EmailAttemptRow } from "../store/types.js";
import { field, ResourceModel, type Scalar, Schemas } from "./resource.js";

const RecipientOutput = Type.Object({
  address: Type.String(),
  state: Type.Union([Type.Literal("accepted"), Type.Literal("rejected"), Type.Literal("deferred")]),
  smtp_code: Type.Union([Type.Integer(), Type.Null()]),
  response: Type.Union([Type.String(), Type.Null()]),
  /** MAILROOM_DELIVERY_MODE=mx: the MX host that answered for this recipient. */
  destination: Type.Optional(Type.String()),
});

/** One delivery attempt of a message. */
export const EmailAttemptModel = new ResourceModel<EmailAttemptRow>(
  "Attempt",
  [
    field("sid", Schemas.text, "EA + 32 hex digits.", (a) => a.sid),
    field("message_sid", Schemas.text, "The message.", (a) => a.message_sid),
    field("account_sid", Schemas.text, "The message's account.", (a) => a.account_sid),
    field("attempt", Schemas.integer, "1 for the first attempt.", (a) => a.attempt),
    field("outcome", Schemas.text, "What the attempt came to (docs/delivery.md).", (a) => a.outcome),
    field("smtp_code", Schemas.integer, "The relay's concluding reply code.", (a) => a.smtp_code),
    field("response", Schemas.text, "The relay's concluding reply.", (a) => a.response),
    field(
      "error_code",
      Schemas.integer,
      "Why it did not deliver to everyone (docs/delivery.md).",
      (a) => a.error_code,
    ),
    field("error_message", Schemas.text, "The error in words.", (a) => a.error_message),
    field(
      "recipients",
      Type.Array(RecipientOutput),
      "Per recipient: state, reply and (direct-to-MX) the MX host that answered.",
      (a) => parseRecipients(a.recipients),
    ),
    field("date_started", Schemas.rfc2822, "When it began.", (a) => rfc2822(a.date_started)),
    field("date_finished", Schemas.rfc2822, "When it ended.", (a) => rfc2822(a.date_finished)),
  ],
  "One delivery attempt of an email message.",
);

/** The per-recipient results an attempt stored as JSON: address, state, smtp_code, response. */
function parseRecipients(json: string | null): ReadonlyArray<Readonly<Record<string, Scalar>>> | null {
  if (json === null) return null;
  const parsed: unknown = JSON.parse(json);
  return Array.isArray(parsed) ? (parsed as Array<Record<string, Scalar>>) : null;
}
