import { ApiError } from "../domain/errors.js";
import { codePoint, describeUnsafeCharacter } from "../domain/header-rules.js";
import { isSid, newSid } from "../domain/ids.js";
import { quoteInput } from "../domain/quote.js";
import type { SendEmailParams } from "../model/email-message.js";
import {
  MAX_TEMPLATE_DATA_BYTES,
  MAX_TEMPLATE_DATA_DEPTH,
  MAX_TEMPLATE_NAME,
  MAX_TEMPLATE_PART_BYTES,
  MAX_TEMPLATE_SUBJECT,
  type RenderedTemplate,
} from "../model/email-template.js";
import type { MailStore, Page, TemplatePatch, TemplateRow } from "../store/types.js";
import { TemplateCache } from "../templates/cache.js";
import { type CompiledPart, checkTemplateSource, type TemplateField } from "../templates/engine.js";

/** The most templates one account may have. */
export const MAX_TEMPLATES_PER_ACCOUNT = 1000;

export interface TemplateInput {
  name?: string | undefined;
  subject?: string | undefined;
  html?: string | undefined;
  text?: string | undefined;
}

/** Who is asking: the account in the URL and the accounts above it, nearest first. */
export interface TemplateReader {
  account: { sid: string };
  ancestors: readonly { sid: string }[];
}

/** A send's parameters with the template applied, and the template used (null: none). */
export interface AppliedTemplate {
  params: SendEmailParams;
  templateSid: string | null;
}

/** The send parameters that select and feed a template. */
type TemplateParams = Pick<
  SendEmailParams,
  "TemplateSid" | "TemplateName" | "TemplateData" | "TemplateStrict"
>;

/** True when a send names a template or gives its data: only then is applyTemplate needed. */
export function usesTemplate(params: TemplateParams): boolean {
  return (
    params.TemplateSid !== undefined ||
    params.TemplateName !== undefined ||
    params.TemplateData !== undefined ||
    params.TemplateStrict !== undefined
  );
}

/**
 * The Templates resource's operations and rendering. A sub-account reads and uses its own
 * templates and those of every account above it (nearest first when names repeat), and changes
 * only its own. Sources are checked when saved, so a send meets no syntax error.
 */
export class TemplateService {
  private readonly cache = new TemplateCache();

  constructor(private readonly store: MailStore) {}

  async create(accountSid: string, input: TemplateInput): Promise<TemplateRow> {
    if (input.name === undefined) throw new ApiError("TemplateFieldMissing", "Name can not be null.");
    if (input.subject === undefined) throw new ApiError("TemplateFieldMissing", "Subject can not be null.");
    const html = checkPart("Html", input.html);
    const text = checkPart("Text", input.text);
    if (html === null && text === null) {
      throw new ApiError(
        "TemplateFieldMissing",
        "A template needs Html or Text (or both): give the body of the message.",
      );
    }
    const now = Date.now();
    const row: TemplateRow = {
      sid: newSid("ET", now),
      account_sid: accountSid,
      name: checkName(input.name),
      subject: checkSubject(input.subject),
      html,
      text,
      date_created: now,
      date_updated: now,
    };
    const result = await this.store.insertTemplate(row, MAX_TEMPLATES_PER_ACCOUNT);
    if (result === "name-taken") throw nameTaken(accountSid, row.name);
    if (result === "limit") {
      throw new ApiError(
        "TemplateLimitReached",
        `Account ${accountSid} already has ${MAX_TEMPLATES_PER_ACCOUNT} templates, the most one account may have; delete one first.`,
      );
    }
    return row;
  }

  /** A template the reader may use: its own or an ancestor's; 404 otherwise (another tenant's too). */
  async find(reader: TemplateReader, sid: string): Promise<TemplateRow> {
    const row = isSid(sid, "ET") ? await this.store.findTemplate(lineage(reader), sid) : undefined;
    if (!row) throw notFound(`${quoteInput(sid)}`, reader.account.sid);
    return row;
  }

  list(reader: TemplateReader, offset: number, limit: number): Promise<Page<TemplateRow>> {
    return this.store.listTemplates(lineage(reader), offset, limit);
  }

  async update(reader: TemplateReader, sid: string, input: TemplateInput): Promise<TemplateRow> {
    const current = this.assertOwn(reader, await this.find(reader, sid));
    const patch: TemplatePatch = {};
    if (input.name !== undefined) patch.name = checkName(input.name);
    if (input.subject !== undefined) patch.subject = checkSubject(input.subject);
    if (input.html !== undefined) patch.html = checkPart("Html", input.html);
    if (input.text !== undefined) patch.text = checkPart("Text", input.text);
    if (Object.keys(patch).length === 0) return current;
    const html = patch.html === undefined ? current.html : patch.html;
    const text = patch.text === undefined ? current.text : patch.text;
    if (html === null && text === null) {
      throw new ApiError(
        "TemplateFieldMissing",
        "A template needs Html or Text (or both): this change would leave it with neither.",
      );
    }
    const result = await this.store.updateTemplate(current.account_sid, current.sid, patch, Date.now());
    if (result === "name-taken") throw nameTaken(current.account_sid, patch.name ?? current.name);
    if (result === undefined) throw notFound(current.sid, reader.account.sid);
    return result;
  }

  async delete(reader: TemplateReader, sid: string): Promise<void> {
    const current = this.assertOwn(reader, await this.find(reader, sid));
    if (!(await this.store.deleteTemplate(current.account_sid, current.sid))) {
      throw notFound(current.sid, reader.account.sid);
    }
  }

  /** Renders the template with `data` as a send would; sends nothing. */
  async preview(
    reader: TemplateReader,
    sid: string,
    data: Record<string, unknown> | undefined,
    strict: string | boolean | undefined,
  ): Promise<RenderedTemplate> {
    const row = await this.find(reader, sid);
    const compiled = this.cache.get(row);
    const feed = checkData(data);
    const strictly = parseStrict(strict);
    const render = (part: CompiledPart | null) => (part === null ? null : part(feed, strictly));
    return {
      sid: row.sid,
      subject: renderSubject(compiled.subject, feed, strictly),
      html: render(compiled.html),
      text: render(compiled.text),
    };
  }

  /**
   * Resolves the template a send names (TemplateSid or TemplateName, the reader's or an
   * ancestor's), renders what the send does not give itself (Subject, Html, Text) with TemplateData,
   * and returns the parameters as if the caller had sent the rendered texts: readEmailRequest then
   * checks them like any send's (a rendered Subject with a line break is refused there). The single
   * send and each item of a batch go through here.
   */
  async applyTemplate(reader: TemplateReader, params: SendEmailParams): Promise<AppliedTemplate> {
    const { TemplateSid, TemplateName, TemplateData, TemplateStrict, ...rest } = params;
    if (TemplateSid === undefined && TemplateName === undefined) {
      if (TemplateData === undefined && TemplateStrict === undefined) return { params, templateSid: null };
      throw new ApiError(
        "TemplateSendConflict",
        "TemplateData and TemplateStrict feed a template: name one with TemplateSid or TemplateName, or leave them out.",
      );
    }
    if (TemplateSid !== undefined && TemplateName !== undefined) {
      throw new ApiError("TemplateSendConflict", "Send TemplateSid or TemplateName, not both.");
    }
    if (rest.Body !== undefined || rest.Type !== undefined) {
      throw new ApiError(
        "TemplateSendConflict",
        "Body and Type cannot be sent with a template: the template gives the Html and Text parts; to replace one, send Html or Text.",
      );
    }
    const strict = parseStrict(TemplateStrict);
    const data = checkData(TemplateData);
    const row =
      TemplateSid !== undefined
        ? await this.find(reader, TemplateSid)
        : await this.findByName(reader, TemplateName as string);
    const compiled = this.cache.get(row);
    const rendered: SendEmailParams = { ...rest };
    rendered.Subject ??= renderSubject(compiled.subject, data, strict);
    if (rendered.Html === undefined && compiled.html !== null) rendered.Html = compiled.html(data, strict);
    if (rendered.Text === undefined && compiled.text !== null) rendered.Text = compiled.text(data, strict);
    return { params: rendered, templateSid: row.sid };
  }

  private async findByName(reader: TemplateReader, name: string): Promise<TemplateRow> {
    const row = await this.store.findTemplateByName(lineage(reader), name);
    if (!row) throw notFound(`named ${quoteInput(name)}`, reader.account.sid);
    return row;
  }

  /** A sub-account uses its parents' templates; only their owner changes them. */
  private assertOwn(reader: TemplateReader, row: TemplateRow): TemplateRow {
    if (row.account_sid !== reader.account.sid) {
      throw new ApiError(
        "TemplateReadOnly",
        `Template ${row.sid} belongs to account ${row.account_sid}, above ${reader.account.sid}: a sub-account may use it but not change or delete it. Change it as ${row.account_sid}, or create a template of your own.`,
      );
    }
    return row;
  }
}

function lineage(reader: TemplateReader): string[] {
  return [reader.account.sid, ...reader.ancestors.map((a) => a.sid)];
}

function notFound(what: string, accountSid: string): ApiError {
  return new ApiError(
    "TemplateNotFound",
    `No template ${what} in account ${accountSid} or the accounts above it.`,
  );
}

function nameTaken(accountSid: string, name: string): ApiError {
  return new ApiError(
    "TemplateNameTaken",
    `Account ${accountSid} already has a template named ${quoteInput(name)}; choose another Name, or update that template.`,
  );
}

function renderSubject(part: CompiledPart, data: Record<string, unknown>, strict: boolean): string {
  const subject = part(data, strict);
  if (subject.trim() === "") {
    throw new ApiError(
      "TemplateRenderFailed",
      "The template's Subject renders empty with this TemplateData; give its variables in TemplateData, or send Subject.",
    );
  }
  return subject;
}

function checkName(name: string): string {
  const unsafe = describeUnsafeCharacter(name);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
  const control = /[\u0000-\u001f\u007f-\u009f]/.exec(name)?.[0];
  if (name.length === 0 || name.length > MAX_TEMPLATE_NAME || name !== name.trim() || control || unsafe) {
    const why =
      control !== undefined
        ? `contains the control character ${codePoint(control)}`
        : unsafe !== undefined
          ? `contains ${unsafe}`
          : name !== name.trim()
            ? "has spaces at either end"
            : `must be 1 to ${MAX_TEMPLATE_NAME} characters long`;
    throw new ApiError("InvalidTemplateField", `Name ${quoteInput(name)} ${why}.`);
  }
  return name;
}

function checkSubject(subject: string): string {
  if (subject.trim() === "") throw new ApiError("TemplateFieldMissing", "Subject can not be empty.");
  if (subject.length > MAX_TEMPLATE_SUBJECT) {
    throw new ApiError(
      "InvalidTemplateField",
      `Subject is ${subject.length} characters long; a template's subject may be at most ${MAX_TEMPLATE_SUBJECT} (and at most 160 once rendered).`,
    );
  }
  // A header holds one line: a line break here would be in every message's Subject.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
  const control = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f]/.exec(subject)?.[0];
  if (control !== undefined) {
    throw new ApiError(
      "InvalidTemplateField",
      `Subject contains a line break or control character (${codePoint(control)}), which an email header cannot carry.`,
    );
  }
  rejectUnsafe("Subject", subject);
  checkTemplateSource("Subject", subject);
  return subject;
}

/** Html or Text: empty means none (null). */
function checkPart(field: "Html" | "Text", source: string | undefined): string | null {
  if (source === undefined || source === "") return null;
  const bytes = Buffer.byteLength(source, "utf8");
  if (bytes > MAX_TEMPLATE_PART_BYTES) {
    throw new ApiError(
      "InvalidTemplateField",
      `${field} is ${bytes} bytes long (UTF-8); a template's ${field} may be at most ${MAX_TEMPLATE_PART_BYTES} bytes.`,
    );
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
  const control = /[\u0000-\u0008\u000b\u000c\u000e-\u001f]/.exec(source)?.[0];
  if (control !== undefined) {
    throw new ApiError(
      "InvalidTemplateField",
      `${field} contains a control character (${codePoint(control)}) other than tab, line feed or carriage return; remove it.`,
    );
  }
  rejectUnsafe(field, source);
  checkTemplateSource(field, source);
  return source;
}

function rejectUnsafe(field: TemplateField, value: string): void {
  const unsafe = describeUnsafeCharacter(value);
  if (unsafe !== undefined) {
    throw new ApiError(
      "InvalidTemplateField",
      `${field} contains ${unsafe}, which email and XML cannot carry; remove it.`,
    );
  }
}

/**
 * TemplateData within its limits: at most MAX_TEMPLATE_DATA_BYTES (strings, keys and numbers as
 * JSON would write them, near enough) and MAX_TEMPLATE_DATA_DEPTH levels. Walked without recursion:
 * JSON.stringify of data nested thousands deep overflows the stack.
 */
function checkData(data: Record<string, unknown> | undefined): Record<string, unknown> {
  if (data === undefined) return {};
  let bytes = 0;
  const pending: Array<[unknown, number]> = [[data, 1]];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const [value, depth] = next;
    if (typeof value === "string") bytes += value.length + 2;
    else if (typeof value !== "object" || value === null) bytes += String(value).length;
    else {
      if (depth > MAX_TEMPLATE_DATA_DEPTH) {
        throw new ApiError(
          "InvalidTemplateParameter",
          `TemplateData is nested more than ${MAX_TEMPLATE_DATA_DEPTH} levels deep; flatten it.`,
        );
      }
      for (const [key, item] of Object.entries(value)) {
        bytes += key.length + 4;
        pending.push([item, depth + 1]);
      }
    }
    if (bytes > MAX_TEMPLATE_DATA_BYTES) {
      throw new ApiError(
        "InvalidTemplateParameter",
        `TemplateData is over ${MAX_TEMPLATE_DATA_BYTES} bytes long as JSON; send less data.`,
      );
    }
  }
  return data;
}

function parseStrict(value: string | boolean | undefined): boolean {
  if (value === undefined || typeof value === "boolean") return value ?? false;
  const lower = value.toLowerCase();
  if (lower === "true") return true;
  if (lower === "false") return false;
  throw new ApiError(
    "InvalidTemplateParameter",
    `TemplateStrict must be true or false, got ${quoteInput(value)}.`,
  );
}
