import { ApiError } from "../domain/errors.js";
import { SendEmailParams } from "../model/email-message.js";
import type { EmailMessageService, PreparedEmail } from "../services/email-messages.js";
import type { TemplateService } from "../services/templates.js";
import type { AccountRow } from "../store/types.js";
import { readSend } from "./read-send.js";
import { prepareSendParams } from "./send-body.js";
import { compileCheck } from "./typebox-check.js";
import { describeValidationErrors, type Schema } from "./validation-errors.js";

/**
 * The send's parameter schema, compiled once (at the first batch) for every item of every batch; the
 * batch route's preValidation hook has loaded TypeBox's compiler by then (loadSchemaChecks).
 */
const checkSendParams = compileCheck(SendEmailParams);

/**
 * One item of a batch, taken through every step a single send takes before it is stored: Restcomm's
 * required parameters (send-body.ts), the send schema (unknown or mistyped parameters refused, in
 * validation-errors.ts's words), its template rendered and readEmailRequest's checks (read-send.ts), and EmailMessageService.prepare
 * (StatusCallback host, SID, Message-ID). Throws the ApiError a single send with this body would get.
 * Whatever a send does to its message before it is stored belongs here, so a batch item gets it too.
 */
export async function prepareBatchItem(
  emails: EmailMessageService,
  templates: TemplateService,
  sender: BatchSender,
  item: unknown,
): Promise<PreparedEmail> {
  if (typeof item !== "object" || item === null || Array.isArray(item)) {
    throw new ApiError(
      "BatchItemNotObject",
      "Each item of a batch must be a JSON object of send parameters (From, To, Subject, Body, …).",
    );
  }
  // A copy: the answer must not depend on what the checks did to the body (the key's hash is of it).
  const params = prepareSendParams({ ...(item as Record<string, unknown>) }, true);
  const errors = checkSendParams(params);
  if (errors) throw describeValidationErrors(errors, "body", SendEmailParams as Schema, params);
  const email = await readSend(templates, sender, params as SendEmailParams);
  return emails.prepare(sender.account.sid, email);
}

/** Who sends the batch: the account in the URL, and its ancestors (what a send's steps may need). */
export interface BatchSender {
  account: AccountRow;
  ancestors: AccountRow[];
}
