import type { FastifyInstance, FastifyRequest } from "fastify";
import Type, { type Static } from "typebox";
import { ApiError } from "../../domain/errors.js";
import type { DomainService } from "../../domains/domain-service.js";
import { CreateDomainParams, DomainModel, domainsPath, domainView } from "../../model/domain.js";
import type { MailStore } from "../../store/types.js";
import { assertMayAct } from "../auth.js";
import { PagingQuery, pagingFields, pagingListSchema, parsePageRequest } from "../paging.js";
import { sendList, sendResource } from "../representation.js";
import { AccountParams, errorResponses, FORM_AND_JSON, JSON_AND_XML, NoQuery } from "../route-schemas.js";

interface Deps {
  store: MailStore;
  domains: DomainService;
}

const DomainParams = Type.Object({
  accountSid: Type.String({ description: "The account's SID (AC…) or email address." }),
  sid: Type.String({ description: "The domain's SID (DM…)." }),
});

const KeyParams = Type.Object({
  accountSid: Type.String({ description: "The account's SID (AC…) or email address." }),
  sid: Type.String({ description: "The domain's SID (DM…)." }),
  selector: Type.String({ description: "The DKIM key's selector, as dkim_keys lists it." }),
});

/** A POST that takes no parameters: an empty form or JSON object, or no body at all. */
const NoBody = Type.Object({}, { additionalProperties: false });
const ListQuery = Type.Object({ ...PagingQuery }, { additionalProperties: false });

type AccountRoute = { Params: Static<typeof AccountParams> };
type DomainRoute = { Params: Static<typeof DomainParams> };
type KeyRoute = { Params: Static<typeof KeyParams> };

async function absentBodyIsEmpty(request: FastifyRequest): Promise<void> {
  request.body ??= {};
}

/**
 * `/Accounts/{AccountSid}/Domains` (in the authenticated context): create, list, get, delete; Verify
 * (look the DNS records up now); Keys (rotate: POST; retire one: DELETE Keys/{Selector}).
 */
export async function domainRoutes(app: FastifyInstance, deps: Deps): Promise<void> {
  const base = domainsPath(":accountSid");
  const tags = ["Domains"];
  const one = { 200: DomainModel.schema, ...errorResponses };
  const { domains } = deps;
  const action = (summary: string, description: string, params = DomainParams) => ({
    schema: {
      tags,
      summary,
      description,
      params,
      querystring: NoQuery,
      body: NoBody,
      consumes: FORM_AND_JSON,
      produces: JSON_AND_XML,
      response: one,
    },
    preValidation: absentBodyIsEmpty,
  });

  app.post<AccountRoute & { Body: Static<typeof CreateDomainParams> }>(
    base,
    {
      schema: {
        tags,
        summary: "Create a sending domain",
        description:
          "Makes the domain's DKIM key (RSA-2048; DkimAlgorithms=rsa,ed25519 adds an Ed25519 signature) and answers the DNS records to publish (dns_records). Private keys are never shown.",
        params: AccountParams,
        querystring: NoQuery,
        body: CreateDomainParams,
        consumes: FORM_AND_JSON,
        produces: JSON_AND_XML,
        response: one,
      },
      preValidation: async (request) => {
        await absentBodyIsEmpty(request);
        const body = request.body as Record<string, unknown>;
        if (body.DomainName === undefined || body.DomainName === null) {
          throw new ApiError("DomainNameMissing", "DomainName can not be null.");
        }
      },
    },
    async (request, reply) => {
      assertMayAct(request, "manage domains");
      const { DomainName, DkimAlgorithms } = request.body;
      const row = await domains.create(request.account.sid, {
        domainName: DomainName,
        algorithms: DkimAlgorithms,
      });
      return sendResource(request, reply, DomainModel.render(domainView(row)));
    },
  );

  app.get<AccountRoute>(
    base,
    {
      schema: {
        tags,
        summary: "List sending domains",
        description: "Oldest first, with Restcomm's paging.",
        params: AccountParams,
        querystring: ListQuery,
        produces: JSON_AND_XML,
        response: { 200: pagingListSchema("domains", DomainModel.schema), ...errorResponses },
      },
    },
    async (request, reply) => {
      const account = request.account;
      const page = parsePageRequest(request.query as Record<string, unknown>);
      const result = await deps.store.listDomains(account.sid, page.page * page.pageSize, page.pageSize);
      return sendList(request, reply, {
        element: "Domains",
        jsonKey: "domains",
        paging: pagingFields(`${domainsPath(account.sid)}.json`, [], page, result.total, result.rows.length),
        items: result.rows.map((row) => DomainModel.render(domainView(row))),
      });
    },
  );

  app.get<DomainRoute>(
    `${base}/:sid`,
    {
      schema: {
        tags,
        summary: "Get a sending domain",
        params: DomainParams,
        querystring: NoQuery,
        produces: JSON_AND_XML,
        response: one,
      },
    },
    async (request, reply) => {
      const row = await domains.find(request.account.sid, request.params.sid);
      return sendResource(request, reply, DomainModel.render(domainView(row)));
    },
  );

  app.delete<DomainRoute>(
    `${base}/:sid`,
    {
      schema: {
        tags,
        summary: "Delete a sending domain",
        description:
          "Deletes it and its keys: mail from it is no longer signed (and, with MAILROOM_REQUIRE_VERIFIED_DOMAIN, refused). Answers 204, no body.",
        params: DomainParams,
        querystring: NoQuery,
        response: { 204: Type.Null({ description: "Deleted." }), ...errorResponses },
      },
    },
    async (request, reply) => {
      assertMayAct(request, "manage domains");
      await domains.delete(request.account.sid, request.params.sid);
      return reply.code(204).send();
    },
  );

  app.post<DomainRoute>(
    `${base}/:sid/Verify`,
    action(
      "Verify a sending domain's DNS records",
      "Looks every record up now (MAILROOM_DNS_SERVERS) and answers the domain as GET does, each record with its status (verified, missing, mismatch with what was found; error when DNS failed for now). The domain is verified once its DKIM record is.",
    ),
    async (request, reply) => {
      assertMayAct(request, "manage domains");
      const row = await domains.verify(request.account.sid, request.params.sid);
      return sendResource(request, reply, DomainModel.render(domainView(row)));
    },
  );

  app.post<DomainRoute>(
    `${base}/:sid/Keys`,
    action(
      "Rotate a sending domain's DKIM key",
      "Makes a new key (new selector) per algorithm in use. Both records are listed: publish the new one and Verify; the new key signs once its record verifies, and the old one is then `previous` until retired.",
    ),
    async (request, reply) => {
      assertMayAct(request, "manage domains");
      const row = await domains.rotate(request.account.sid, request.params.sid);
      return sendResource(request, reply, DomainModel.render(domainView(row)));
    },
  );

  app.delete<KeyRoute>(
    `${base}/:sid/Keys/:selector`,
    {
      schema: {
        tags,
        summary: "Retire a DKIM key",
        description:
          "Removes a key that no longer signs (previous, or a pending one never published); its DNS record may then be removed. The active key cannot be retired (16008). Answers the domain.",
        params: KeyParams,
        querystring: NoQuery,
        produces: JSON_AND_XML,
        response: one,
      },
    },
    async (request, reply) => {
      assertMayAct(request, "manage domains");
      const { sid, selector } = request.params;
      const row = await domains.retireKey(request.account.sid, sid, selector);
      return sendResource(request, reply, DomainModel.render(domainView(row)));
    },
  );
}
