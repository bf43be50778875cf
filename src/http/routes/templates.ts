import type { FastifyInstance, FastifyRequest } from "fastify";
import Type, { type Static } from "typebox";
import { ApiError } from "../../domain/errors.js";
import {
  CreateTemplateParams,
  PreviewTemplateParams,
  TemplateModel,
  TemplatePreviewModel,
  templatesPath,
  UpdateTemplateParams,
} from "../../model/email-template.js";
import type { TemplateReader, TemplateService } from "../../services/templates.js";
import { assertMayAct } from "../auth.js";
import { PagingQuery, pagingFields, pagingListSchema, parsePageRequest } from "../paging.js";
import { sendList, sendResource } from "../representation.js";
import {
  AccountParams,
  ErrorBody,
  errorResponses,
  FORM_AND_JSON,
  JSON_AND_XML,
  NoQuery,
} from "../route-schemas.js";
import { parseJsonTextParams } from "../send-body.js";

const TemplateParams = Type.Object({
  accountSid: Type.String({ description: "The account's SID (AC…) or email address." }),
  sid: Type.String({ description: "The template's SID (ET…)." }),
});

const ListQuery = Type.Object({ ...PagingQuery }, { additionalProperties: false });

type AccountRoute = { Params: Static<typeof AccountParams> };
type TemplateRoute = { Params: Static<typeof TemplateParams> };

/** The account in the URL and the accounts above it: whose templates it reads. */
function readerOf(request: FastifyRequest): TemplateReader {
  return { account: request.account, ancestors: request.accountAncestors };
}

/** A POST's body may be absent: validated as an empty object. */
async function absentBodyIsEmpty(request: FastifyRequest): Promise<void> {
  request.body ??= {};
}

/** Form bodies carry TemplateData as JSON text, as a send's do. */
async function previewBody(request: FastifyRequest): Promise<void> {
  await absentBodyIsEmpty(request);
  const body = request.body as Record<string, unknown>;
  if (typeof body !== "object" || Array.isArray(body)) return;
  if (request.headers["content-type"]?.includes("json")) {
    for (const key in body) if (body[key] === null) delete body[key];
  } else {
    parseJsonTextParams(body);
  }
}

/**
 * `/Accounts/{AccountSid}/Email/Templates` (in the authenticated context): create, list, get,
 * update, delete, and Preview (render with data, send nothing).
 */
export async function templateRoutes(app: FastifyInstance, templates: TemplateService): Promise<void> {
  const base = templatesPath(":accountSid");
  const tags = ["Email templates"];
  const one = { 200: TemplateModel.schema, ...errorResponses };
  // Create and update: another template of the account has the name (15103).
  const written = { ...one, 409: ErrorBody };

  app.post<AccountRoute & { Body: Static<typeof CreateTemplateParams> }>(
    base,
    {
      schema: {
        tags,
        summary: "Create a template",
        description:
          "Saves a Handlebars template (Name, Subject, and Html and/or Text). Its syntax is checked now: an error names the field, line and column (15104).",
        params: AccountParams,
        querystring: NoQuery,
        body: CreateTemplateParams,
        consumes: FORM_AND_JSON,
        produces: JSON_AND_XML,
        response: written,
      },
      preValidation: async (request) => {
        await absentBodyIsEmpty(request);
        const body = request.body as Record<string, unknown>;
        for (const name of ["Name", "Subject"]) {
          if (body[name] === undefined || body[name] === null) {
            throw new ApiError("TemplateFieldMissing", `${name} can not be null.`);
          }
        }
      },
    },
    async (request, reply) => {
      assertMayAct(request, "manage templates");
      const { Name, Subject, Html, Text } = request.body;
      const row = await templates.create(request.account.sid, {
        name: Name,
        subject: Subject,
        html: Html,
        text: Text,
      });
      return sendResource(request, reply, TemplateModel.render(row));
    },
  );

  app.get<AccountRoute>(
    base,
    {
      schema: {
        tags,
        summary: "List templates",
        description:
          "The account's templates and those of the accounts above it (which it may use, not change), oldest first, with Restcomm's paging.",
        params: AccountParams,
        querystring: ListQuery,
        produces: JSON_AND_XML,
        response: { 200: pagingListSchema("templates", TemplateModel.schema), ...errorResponses },
      },
    },
    async (request, reply) => {
      const page = parsePageRequest(request.query as Record<string, unknown>);
      const result = await templates.list(readerOf(request), page.page * page.pageSize, page.pageSize);
      const path = `${templatesPath(request.account.sid)}.json`;
      return sendList(request, reply, {
        element: "EmailTemplates",
        jsonKey: "templates",
        paging: pagingFields(path, [], page, result.total, result.rows.length),
        items: result.rows.map((row) => TemplateModel.render(row)),
      });
    },
  );

  const templateSchema = (summary: string, extra: Record<string, unknown> = {}) => ({
    schema: {
      tags,
      summary,
      params: TemplateParams,
      querystring: NoQuery,
      produces: JSON_AND_XML,
      response: one,
      ...extra,
    },
  });

  app.get<TemplateRoute>(`${base}/:sid`, templateSchema("Get a template"), async (request, reply) => {
    const row = await templates.find(readerOf(request), request.params.sid);
    return sendResource(request, reply, TemplateModel.render(row));
  });

  app.post<TemplateRoute & { Body: Static<typeof UpdateTemplateParams> }>(
    `${base}/:sid`,
    {
      ...templateSchema("Update a template", {
        description:
          "Changes the parameters given (Name, Subject, Html, Text; an empty Html or Text removes that part), checked as at creation. Only the owning account may change it (15105).",
        body: UpdateTemplateParams,
        consumes: FORM_AND_JSON,
        response: written,
      }),
      preValidation: absentBodyIsEmpty,
    },
    async (request, reply) => {
      assertMayAct(request, "manage templates");
      const { Name, Subject, Html, Text } = request.body;
      const row = await templates.update(readerOf(request), request.params.sid, {
        name: Name,
        subject: Subject,
        html: Html,
        text: Text,
      });
      return sendResource(request, reply, TemplateModel.render(row));
    },
  );

  app.delete<TemplateRoute>(
    `${base}/:sid`,
    {
      schema: {
        tags,
        summary: "Delete a template",
        description:
          "Deletes it; messages sent with it keep their content and template_sid. Only the owning account may delete it (15105). Answers 204, no body.",
        params: TemplateParams,
        querystring: NoQuery,
        response: { 204: Type.Null({ description: "Deleted." }), ...errorResponses },
      },
    },
    async (request, reply) => {
      assertMayAct(request, "manage templates");
      await templates.delete(readerOf(request), request.params.sid);
      return reply.code(204).send();
    },
  );

  app.post<TemplateRoute & { Body: Static<typeof PreviewTemplateParams> }>(
    `${base}/:sid/Preview`,
    {
      schema: {
        tags,
        summary: "Render a template without sending",
        description:
          "Renders subject, html and text with TemplateData (TemplateStrict as for a send) and answers them; nothing is stored or sent.",
        params: TemplateParams,
        querystring: NoQuery,
        body: PreviewTemplateParams,
        consumes: FORM_AND_JSON,
        produces: JSON_AND_XML,
        response: { 200: TemplatePreviewModel.schema, ...errorResponses },
      },
      preValidation: previewBody,
    },
    async (request, reply) => {
      const { TemplateData, TemplateStrict } = request.body;
      const rendered = await templates.preview(
        readerOf(request),
        request.params.sid,
        TemplateData,
        TemplateStrict,
      );
      return sendResource(request, reply, TemplatePreviewModel.render(rendered));
    },
  );
}
