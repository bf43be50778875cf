import Type from "typebox";
import { rfc2822 } from "../http/dates.js";
import { formatDuration } from "../lifecycle/durations.js";
import type { Retention } from "../lifecycle/retention.js";
import type { AccountRow } from "../store/types.js";
import { API_BASE, accountUri, emailMessagesPath, notificationsPath } from "./paths.js";
import { field, ResourceModel, Schemas } from "./resource.js";

/** An account as shown, with its AuthToken only right after it was issued (it is never stored in the clear). */
export interface AccountSource {
  account: AccountRow;
  authToken?: string | undefined;
  /** Its effective retention (issue 16), where the caller worked it out from the lineage. */
  retention?: Retention | undefined;
}

const text = (description: string) => Type.String({ description });

/** `POST /Accounts`: Restcomm's parameters. */
export const CreateAccountParams = Type.Object(
  {
    EmailAddress: text("The account's email address; also usable as the Basic-auth user name."),
    Password: text("At least 8 characters."),
    FriendlyName: Type.Optional(text("A name for people; default the email address.")),
    Role: Type.Optional(text("Restcomm's role name.")),
    Status: Type.Optional(text("active (default), suspended or uninitialized.")),
  },
  { additionalProperties: false },
);

/** `POST|PUT /Accounts/{AccountSid}`: Restcomm's parameters (its Python client also repeats AccountSid). */
export const UpdateAccountParams = Type.Object(
  {
    FriendlyName: Type.Optional(text("A name for people.")),
    Status: Type.Optional(
      text("active, suspended, closed (final, cascades to sub-accounts) or uninitialized."),
    ),
    Password: Type.Optional(text("A new password, at least 8 characters.")),
    RotateAuthToken: Type.Optional(text("true issues a new AuthToken (shown once) and retires the old one.")),
    AccountSid: Type.Optional(
      text("The account being updated, as Restcomm's clients repeat it; must match the URL."),
    ),
    ContentRetention: Type.Optional(
      text(
        "How long its final messages keep their content, e.g. 30d, 12h, 90s; at most its parent's; empty inherits. Set by a parent or an Administrator only.",
      ),
    ),
    MetadataRetention: Type.Optional(
      text(
        "How long its final messages are kept at all; at most its parent's, at least ContentRetention; empty inherits. Set by a parent or an Administrator only.",
      ),
    ),
  },
  { additionalProperties: false },
);

/** Restcomm's fields in Restcomm's order; Mailroom's additions after them. */
export const AccountModel = new ResourceModel<AccountSource>(
  "Account",
  [
    field("sid", Schemas.text, "AC + 32 hex digits.", ({ account }) => account.sid),
    field("friendly_name", Schemas.text, "A name for people.", ({ account }) => account.friendly_name),
    field(
      "email_address",
      Schemas.text,
      "The account's email address.",
      ({ account }) => account.email_address,
    ),
    field("type", Schemas.text, "Full or Trial.", ({ account }) => account.type),
    field(
      "status",
      Schemas.text,
      "active, suspended, closed or uninitialized.",
      ({ account }) => account.status,
    ),
    field("role", Schemas.text, "Restcomm's role name.", ({ account }) => account.role),
    field("date_created", Schemas.rfc2822, "When it was created.", ({ account }) =>
      rfc2822(account.date_created),
    ),
    field("date_updated", Schemas.rfc2822, "When it last changed.", ({ account }) =>
      rfc2822(account.date_updated),
    ),
    field(
      "auth_token",
      Schemas.text,
      "Only in the answer that issued it.",
      ({ authToken }) => authToken ?? null,
    ),
    field("uri", Schemas.text, "This resource.", ({ account }) => accountUri(account.sid)),
    field(
      "subresource_uris",
      Type.Object({ email_messages: Type.String(), accounts: Type.String(), notifications: Type.String() }),
      "Related resources.",
      ({ account }) => ({
        email_messages: `${emailMessagesPath(account.sid)}.json`,
        accounts: `${API_BASE}/Accounts.json`,
        notifications: `${notificationsPath(account.sid)}.json`,
      }),
    ),
    field(
      "parent_sid",
      Schemas.text,
      "The parent account, for a sub-account.",
      ({ account }) => account.parent_sid,
    ),
    field(
      "content_retention",
      Schemas.text,
      "How long its final messages keep their content (effective: its own value, capped by its ancestors', or MAILROOM_CONTENT_RETENTION).",
      ({ retention }) => (retention ? formatDuration(retention.contentMs) : null),
    ),
    field(
      "metadata_retention",
      Schemas.text,
      "How long its final messages are kept at all (effective, as content_retention).",
      ({ retention }) => (retention ? formatDuration(retention.metadataMs) : null),
    ),
  ],
  "An account (tenant). Sub-accounts are accounts whose parent_sid is set.",
);
