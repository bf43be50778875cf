import Type from "typebox";
import { rfc2822 } from "../http/dates.js";
import type { TemplateRow } from "../store/types.js";
import { API_BASE } from "./paths.js";
import { field, ResourceModel, Schemas } from "./resource.js";

/** The limits of a template (docs/api.md#templates). */
export const MAX_TEMPLATE_NAME = 100;
/** The subject's source; the rendered subject must still fit 160 characters. */
export const MAX_TEMPLATE_SUBJECT = 1000;
/** Html and Text each, in UTF-8 bytes. */
export const MAX_TEMPLATE_PART_BYTES = 512 * 1024;
/** TemplateData as JSON, in bytes (the request's body limit applies first). */
export const MAX_TEMPLATE_DATA_BYTES = 256 * 1024;
/** How deep TemplateData may nest (objects and arrays). */
export const MAX_TEMPLATE_DATA_DEPTH = 32;

export function templatesPath(accountSid: string): string {
  return `${API_BASE}/Accounts/${accountSid}/Email/Templates`;
}

export function templatePath(accountSid: string, sid: string): string {
  return `${templatesPath(accountSid)}/${sid}`;
}

const text = (description: string) => Type.String({ description });

const NameParam = text(
  `Unique in the account: 1–${MAX_TEMPLATE_NAME} characters, no control characters, no spaces at either end. Sends name it with TemplateName.`,
);
const SubjectParam = text(
  `The subject, a Handlebars template (at most ${MAX_TEMPLATE_SUBJECT} characters, no line breaks); rendered, at most 160 characters.`,
);
const HtmlParam = text(
  `The HTML part, a Handlebars template: {{ }} escapes HTML, {{{ }}} does not. At most ${MAX_TEMPLATE_PART_BYTES / 1024} KiB. Empty: none.`,
);
const TextParam = text(
  `The plain-text part, a Handlebars template (nothing escaped). At most ${MAX_TEMPLATE_PART_BYTES / 1024} KiB. Empty: none.`,
);

/** `POST …/Email/Templates`. At least one of Html and Text. */
export const CreateTemplateParams = Type.Object(
  {
    Name: NameParam,
    Subject: SubjectParam,
    Html: Type.Optional(HtmlParam),
    Text: Type.Optional(TextParam),
  },
  { additionalProperties: false },
);

/** `POST …/Email/Templates/{Sid}`: what is given changes, the rest stays. */
export const UpdateTemplateParams = Type.Object(
  {
    Name: Type.Optional(NameParam),
    Subject: Type.Optional(SubjectParam),
    Html: Type.Optional(HtmlParam),
    Text: Type.Optional(TextParam),
  },
  { additionalProperties: false },
);

export const TemplateDataParam = Type.Record(Type.String(), Type.Unknown(), {
  description: `The template's variables, a JSON object (in form and multipart bodies, its JSON text); at most ${MAX_TEMPLATE_DATA_BYTES / 1024} KiB, ${MAX_TEMPLATE_DATA_DEPTH} levels deep.`,
});
export const TemplateStrictParam = Type.Union([Type.String(), Type.Boolean()], {
  description:
    "true: a variable the template writes that TemplateData lacks is an error (15112); false (default): it renders empty.",
});

/** `POST …/Email/Templates/{Sid}/Preview`. */
export const PreviewTemplateParams = Type.Object(
  {
    TemplateData: Type.Optional(TemplateDataParam),
    TemplateStrict: Type.Optional(TemplateStrictParam),
  },
  { additionalProperties: false },
);

export const TemplateModel = new ResourceModel<TemplateRow>(
  "EmailTemplate",
  [
    field("sid", Schemas.text, "ET + 32 hex digits.", (t) => t.sid),
    field(
      "account_sid",
      Schemas.text,
      "The account that owns it (a sub-account also sees its parents' templates).",
      (t) => t.account_sid,
    ),
    field("name", Schemas.text, "Unique in its account.", (t) => t.name),
    field("subject", Schemas.text, "The subject's template.", (t) => t.subject),
    field("html", Schemas.text, "The HTML part's template.", (t) => t.html),
    field("text", Schemas.text, "The text part's template.", (t) => t.text),
    field("date_created", Schemas.rfc2822, "When it was created.", (t) => rfc2822(t.date_created)),
    field("date_updated", Schemas.rfc2822, "When it last changed.", (t) => rfc2822(t.date_updated)),
    field("uri", Schemas.text, "This resource.", (t) => `${templatePath(t.account_sid, t.sid)}.json`),
  ],
  "An email template: a subject, an HTML and a text part, Handlebars templates checked when saved.",
);

/** A template rendered with some data, as Preview answers it (nothing is sent). */
export interface RenderedTemplate {
  sid: string;
  subject: string;
  html: string | null;
  text: string | null;
}

export const TemplatePreviewModel = new ResourceModel<RenderedTemplate>(
  "EmailTemplatePreview",
  [
    field("sid", Schemas.text, "The template rendered.", (r) => r.sid),
    field("subject", Schemas.text, "The subject, rendered.", (r) => r.subject),
    field("html", Schemas.text, "The HTML part, rendered (HTML-escaped variables).", (r) => r.html),
    field("text", Schemas.text, "The text part, rendered.", (r) => r.text),
  ],
  "A template rendered with TemplateData, as a send would render it.",
);
