import type { FastifyInstance, FastifyRequest } from "fastify";
import type { Static } from "typebox";
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
import { sendResource } from "../representation.js";
import { AccountParams, ErrorBody, errorResponses } from "../route-schemas.js";
import { parseJsonTextParams } from "../send-body.js";
import {
  absentBodyIsEmpty,
  requireParameters,
  resourceParams,
  resourceSchemas,
  sendPage,
} from "./account-resource.js";

const TemplateParams = resourceParams("template", "ET");

type AccountRoute = { Params: Static<typeof AccountParams> };
type TemplateRoute = { Params: Static<typeof TemplateParams> };

/** The account in the URL and the accounts above it: whose templates it reads. */
function readerOf(request: FastifyRequest): TemplateReader {
  return { account: request.account, ancestors: request.accountAncestors };
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
  const schemas = resourceSchemas(["Email templates"], TemplateModel.schema);
  // Create and update: another template of the account has the name (15103).
  const written = { 200: TemplateModel.schema, ...errorResponses, 409: ErrorBody };

  app.post<AccountRoute & { Body: Static<typeof CreateTemplateParams> }>(
    base,
    schemas.route(
      AccountParams,
      {
        summary: "Create a template",
        description:
          "Saves a Handlebars template (Name, Subject, and Html and/or Text). Its syntax is checked now: an error names the field, line and column (15104).",
      },
      {
        body: CreateTemplateParams,
        response: written,
        preValidation: requireParameters("TemplateFieldMissing", ["Name", "Subject"]),
      },
    ),
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
    schemas.list(
      AccountParams,
      {
        summary: "List templates",
        description:
          "The account's templates and those of the accounts above it (which it may use, not change), oldest first, with Restcomm's paging.",
      },
      "templates",
    ),
    async (request, reply) =>
      sendPage(request, reply, {
        element: "EmailTemplates",
        jsonKey: "templates",
        path: templatesPath(request.account.sid),
        fetch: (offset, limit) => templates.list(readerOf(request), offset, limit),
        render: (row) => TemplateModel.render(row),
      }),
  );

  app.get<TemplateRoute>(
    `${base}/:sid`,
    schemas.route(TemplateParams, { summary: "Get a template" }),
    async (request, reply) => {
      const row = await templates.find(readerOf(request), request.params.sid);
      return sendResource(request, reply, TemplateModel.render(row));
    },
  );

  app.post<TemplateRoute & { Body: Static<typeof UpdateTemplateParams> }>(
    `${base}/:sid`,
    schemas.route(
      TemplateParams,
      {
        summary: "Update a template",
        description:
          "Changes the parameters given (Name, Subject, Html, Text; an empty Html or Text removes that part), checked as at creation. Only the owning account may change it (15105).",
      },
      { body: UpdateTemplateParams, response: written },
    ),
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
    schemas.deletion(TemplateParams, {
      summary: "Delete a template",
      description:
        "Deletes it; messages sent with it keep their content and template_sid. Only the owning account may delete it (15105). Answers 204, no body.",
    }),
    async (request, reply) => {
      assertMayAct(request, "manage templates");
      await templates.delete(readerOf(request), request.params.sid);
      return reply.code(204).send();
    },
  );

  app.post<TemplateRoute & { Body: Static<typeof PreviewTemplateParams> }>(
    `${base}/:sid/Preview`,
    schemas.route(
      TemplateParams,
      {
        summary: "Render a template without sending",
        description:
          "Renders subject, html and text with TemplateData (TemplateStrict as for a send) and answers them; nothing is stored or sent.",
      },
      {
        body: PreviewTemplateParams,
        response: { 200: TemplatePreviewModel.schema, ...errorResponses },
        preValidation: previewBody,
      },
    ),
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
