import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import Type, { type Static } from "typebox";
import { ApiError } from "../../domain/errors.js";
import { quoteInput } from "../../domain/quote.js";
import { AccountModel, CreateAccountParams, UpdateAccountParams } from "../../model/account.js";
import { API_BASE } from "../../model/paths.js";
import type { AccountService } from "../../services/accounts.js";
import type { AccountRow } from "../../store/types.js";
import { sendList, sendResource } from "../representation.js";
import { AccountParams, errorResponses, FORM_AND_JSON, JSON_AND_XML, NoQuery } from "../route-schemas.js";

type UpdateRoute = {
  Params: Static<typeof AccountParams>;
  Body: Static<typeof UpdateAccountParams> | undefined;
};

/** The caller and its ancestors, nearest first (whose retention caps the caller's sub-accounts). */
async function actorLineage(accounts: AccountService, actor: AccountRow): Promise<AccountRow[]> {
  const lineage = await accounts.lookup(actor.sid);
  return lineage ? [lineage.account, ...lineage.ancestors] : [actor];
}

/** `/Accounts` (in the authenticated context): Restcomm's account operations. */
export async function accountRoutes(app: FastifyInstance, accounts: AccountService): Promise<void> {
  const tags = ["Accounts"];
  const ok = { 200: AccountModel.schema, ...errorResponses };

  // Restcomm lists the caller's sub-accounts.
  app.get(
    `${API_BASE}/Accounts`,
    {
      schema: {
        tags,
        summary: "List your sub-accounts",
        querystring: NoQuery,
        produces: JSON_AND_XML,
        response: { 200: Type.Array(AccountModel.schema), ...errorResponses },
      },
    },
    async (request, reply) => {
      const children = await accounts.listChildren(request.actor.sid);
      const above = await actorLineage(accounts, request.actor);
      return sendList(request, reply, {
        element: "Accounts",
        jsonKey: "accounts",
        paging: undefined,
        items: children.map((child) =>
          AccountModel.render({ account: child, retention: accounts.retentionOf([child, ...above]) }),
        ),
      });
    },
  );

  app.post<{ Body: Static<typeof CreateAccountParams> }>(
    `${API_BASE}/Accounts`,
    {
      schema: {
        tags,
        summary: "Create a sub-account",
        querystring: NoQuery,
        description:
          "Creates an account below yours. The answer carries the new account's AuthToken: it is shown this once. Only an Administrator may give Role=Administrator; an account other than an Administrator may have at most MAILROOM_MAX_SUBACCOUNTS accounts below it.",
        body: CreateAccountParams,
        consumes: FORM_AND_JSON,
        produces: JSON_AND_XML,
        response: ok,
      },
      // Restcomm's own messages for the two required parameters, before the schema's.
      preValidation: async (request) => {
        const body = (request.body ?? {}) as Record<string, unknown>;
        for (const name of ["EmailAddress", "Password"]) {
          if (body[name] === undefined || body[name] === null) {
            throw new ApiError("AccountFieldMissing", `${name} can not be null.`);
          }
        }
      },
    },
    async (request, reply) => {
      const params = request.body;
      const issued = await accounts.create(
        {
          emailAddress: params.EmailAddress,
          password: params.Password,
          friendlyName: params.FriendlyName,
          role: params.Role,
          status: params.Status,
        },
        request.actor,
      );
      const above = await actorLineage(accounts, request.actor);
      const retention = accounts.retentionOf([issued.account, ...above]);
      return sendResource(request, reply, AccountModel.render({ ...issued, retention }));
    },
  );

  app.get<{ Params: Static<typeof AccountParams> }>(
    `${API_BASE}/Accounts/:accountSid`,
    {
      schema: {
        tags,
        summary: "Get an account",
        params: AccountParams,
        produces: JSON_AND_XML,
        response: ok,
      },
    },
    async (request, reply) =>
      sendResource(
        request,
        reply,
        AccountModel.render({
          account: request.account,
          retention: accounts.retentionOf([request.account, ...request.accountAncestors]),
        }),
      ),
  );

  const update = async (request: FastifyRequest<UpdateRoute>, reply: FastifyReply) => {
    const target = request.account;
    const params = request.body ?? {};
    const named = params.AccountSid;
    if (named !== undefined && named !== target.sid && named.toLowerCase() !== target.email_address) {
      throw new ApiError(
        "InvalidAccountField",
        `AccountSid ${quoteInput(named)} does not match the account in the URL (${target.sid}).`,
      );
    }
    const rotate = params.RotateAuthToken;
    if (rotate !== undefined && rotate !== "true" && rotate !== "false") {
      throw new ApiError(
        "InvalidAccountField",
        `RotateAuthToken must be true or false, got ${quoteInput(rotate)}.`,
      );
    }
    const result = await accounts.update(request.actor, target, {
      friendlyName: params.FriendlyName,
      status: params.Status,
      password: params.Password,
      rotateAuthToken: rotate === "true",
      contentRetention: params.ContentRetention,
      metadataRetention: params.MetadataRetention,
      ancestors: request.accountAncestors,
    });
    const retention = accounts.retentionOf([result.account, ...request.accountAncestors]);
    return sendResource(request, reply, AccountModel.render({ ...result, retention }));
  };
  const updateSchema = (method: string) => ({
    schema: {
      tags,
      summary: `Update an account (${method})`,
      description:
        "Status can be changed by an ancestor or an Administrator, never by the account itself. Status=closed is final and closes every sub-account too.",
      params: AccountParams,
      querystring: NoQuery,
      body: UpdateAccountParams,
      consumes: FORM_AND_JSON,
      produces: JSON_AND_XML,
      response: ok,
    },
  });
  app.post<UpdateRoute>(`${API_BASE}/Accounts/:accountSid`, updateSchema("POST"), update);
  app.put<UpdateRoute>(`${API_BASE}/Accounts/:accountSid`, updateSchema("PUT"), update);
}
