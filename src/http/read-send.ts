import {
  type AttachmentUpload,
  readEmailRequest,
  type SendEmailParams,
  type ValidatedEmail,
} from "../model/email-message.js";
import { type TemplateReader, type TemplateService, usesTemplate } from "../services/templates.js";

/**
 * A send's checked parameters read into a validated email, for a single send and for each item of a
 * batch alike. A template is rendered into the parameters first, so its output gets every check a
 * send's does; without one this is synchronous (the common case: no promise per send).
 */
export function readSend(
  templates: TemplateService,
  lineage: TemplateReader,
  params: SendEmailParams,
  uploads: AttachmentUpload[] = [],
): ValidatedEmail | Promise<ValidatedEmail> {
  if (!usesTemplate(params)) return readEmailRequest(params, uploads);
  return templates.applyTemplate(lineage, params).then((applied) => {
    const email = readEmailRequest(applied.params, uploads);
    if (applied.templateSid) email.content.template_sid = applied.templateSid;
    return email;
  });
}
