import Type from "typebox";
import { rfc2822 } from "../http/dates.js";
import type { Erasure } from "../lifecycle/erasure.js";
import { API_BASE } from "./paths.js";
import { field, ResourceModel, Schemas } from "./resource.js";

/** `POST /Accounts/{AccountSid}/Email/Erasures`: the address to erase. */
export const CreateErasureParams = Type.Object(
  {
    Address: Type.String({
      description:
        "The email address to erase from the account's messages and its sub-accounts' (From, To, CC, BCC, Reply-To; compared without regard to case).",
    }),
  },
  { additionalProperties: false },
);

export function erasuresPath(accountSid: string): string {
  return `${API_BASE}/Accounts/${accountSid}/Email/Erasures`;
}

export const ErasureModel = new ResourceModel<Erasure>(
  "Erasure",
  [
    field("sid", Schemas.text, "ER + 32 hex digits.", (e) => e.sid),
    field("account_sid", Schemas.text, "The account whose lineage was erased.", (e) => e.accountSid),
    field(
      "address_hash",
      Schemas.text,
      "The salted hash that replaced the address (its messages now show <address_hash>@erased.invalid).",
      (e) => e.addressHash,
    ),
    field(
      "messages_affected",
      Schemas.integer,
      "Final messages whose address and content were erased.",
      (e) => e.messagesAffected,
    ),
    field(
      "messages_pending",
      Schemas.integer,
      "Messages to or from the address not final yet (queued, sending, scheduled), left unchanged: erase again once they are final.",
      (e) => e.messagesPending,
    ),
    field("date_created", Schemas.rfc2822, "When the erasure ran.", (e) => rfc2822(e.dateCreated)),
    field(
      "uri",
      Schemas.text,
      "Where erasures of this account are made.",
      (e) => `${erasuresPath(e.accountSid)}.json`,
    ),
  ],
  "The erasure of one email address (issue 16).",
);
