import type { Insertable, Selectable } from "kysely";
import type { EmailTemplatesTable } from "./schema.js";

/** The rows of the Templates resource and what its writes answer (template-queries.ts). */
export type TemplateRow = Selectable<EmailTemplatesTable>;
export type NewTemplate = Insertable<EmailTemplatesTable>;
export type TemplatePatch = Partial<Pick<TemplateRow, "name" | "subject" | "html" | "text">>;

/** A write's answer: its result, or that another template of the account has the name. */
export type TemplateWrite<T> = T | "name-taken";
