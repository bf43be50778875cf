import type { FastifyInstance } from "fastify";
import Type, { type Static } from "typebox";
import type { DomainService } from "../../domains/domain-service.js";
import { CreateDomainParams, DomainModel, domainsPath, domainView } from "../../model/domain.js";
import type { DomainRow } from "../../store/domain-queries.js";
import type { MailStore } from "../../store/types.js";
import { assertMayAct } from "../auth.js";
import { sendResource } from "../representation.js";
import { AccountParams } from "../route-schemas.js";
import { NoBody, requireParameters, resourceParams, resourceSchemas, sendPage } from "./account-resource.js";

interface Deps {
  store: MailStore;
  domains: DomainService;
}

const DomainParams = resourceParams("domain", "DM");
const KeyParams = resourceParams("domain", "DM", {
  selector: Type.String({ description: "The DKIM key's selector, as dkim_keys lists it." }),
});

type AccountRoute = { Params: Static<typeof AccountParams> };
type DomainRoute = { Params: Static<typeof DomainParams> };
type KeyRoute = { Params: Static<typeof KeyParams> };

/**
 * `/Accounts/{AccountSid}/Domains` (in the authenticated context): create, list, get, delete; Verify
 * (look the DNS records up now); Keys (rotate: POST; retire one: DELETE Keys/{Selector}).
 */
export async function domainRoutes(app: FastifyInstance, deps: Deps): Promise<void> {
  const base = domainsPath(":accountSid");
  const schemas = resourceSchemas(["Domains"], DomainModel.schema);
  const { domains } = deps;
  /** A POST on `{sid}/{path}` that takes no parameters, changes the domain and answers it. */
  const action = (
    path: string,
    summary: string,
    description: string,
    act: (accountSid: string, sid: string) => Promise<DomainRow>,
  ) =>
    app.post<DomainRoute>(
      `${base}/:sid/${path}`,
      schemas.route(DomainParams, { summary, description }, { body: NoBody }),
      async (request, reply) => {
        assertMayAct(request, "manage domains");
        const row = await act(request.account.sid, request.params.sid);
        return sendResource(request, reply, DomainModel.render(domainView(row)));
      },
    );

  app.post<AccountRoute & { Body: Static<typeof CreateDomainParams> }>(
    base,
    schemas.route(
      AccountParams,
      {
        summary: "Create a sending domain",
        description:
          "Makes the domain's DKIM key (RSA-2048; DkimAlgorithms=rsa,ed25519 adds an Ed25519 signature) and answers the DNS records to publish (dns_records). Private keys are never shown.",
      },
      { body: CreateDomainParams, preValidation: requireParameters("DomainNameMissing", ["DomainName"]) },
    ),
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
    schemas.list(
      AccountParams,
      { summary: "List sending domains", description: "Oldest first, with Restcomm's paging." },
      "domains",
    ),
    async (request, reply) => {
      const account = request.account;
      return sendPage(request, reply, {
        element: "Domains",
        jsonKey: "domains",
        path: domainsPath(account.sid),
        fetch: (offset, limit) => deps.store.listDomains(account.sid, offset, limit),
        render: (row) => DomainModel.render(domainView(row)),
      });
    },
  );

  app.get<DomainRoute>(
    `${base}/:sid`,
    schemas.route(DomainParams, { summary: "Get a sending domain" }),
    async (request, reply) => {
      const row = await domains.find(request.account.sid, request.params.sid);
      return sendResource(request, reply, DomainModel.render(domainView(row)));
    },
  );

  app.delete<DomainRoute>(
    `${base}/:sid`,
    schemas.deletion(DomainParams, {
      summary: "Delete a sending domain",
      description:
        "Deletes it and its keys: mail from it is no longer signed (and, with MAILROOM_REQUIRE_VERIFIED_DOMAIN, refused). Answers 204, no body.",
    }),
    async (request, reply) => {
      assertMayAct(request, "manage domains");
      await domains.delete(request.account.sid, request.params.sid);
      return reply.code(204).send();
    },
  );

  action(
    "Verify",
    "Verify a sending domain's DNS records",
    "Looks every record up now (MAILROOM_DNS_SERVERS) and answers the domain as GET does, each record with its status (verified, missing, mismatch with what was found; error when DNS failed for now). The domain is verified once its DKIM record is.",
    (accountSid, sid) => domains.verify(accountSid, sid),
  );

  action(
    "Keys",
    "Rotate a sending domain's DKIM key",
    "Makes a new key (new selector) per algorithm in use. Both records are listed: publish the new one and Verify; the new key signs once its record verifies, and the old one is then `previous` until retired.",
    (accountSid, sid) => domains.rotate(accountSid, sid),
  );

  app.delete<KeyRoute>(
    `${base}/:sid/Keys/:selector`,
    schemas.route(KeyParams, {
      summary: "Retire a DKIM key",
      description:
        "Removes a key that no longer signs (previous, or a pending one never published); its DNS record may then be removed. The active key cannot be retired (16008). Answers the domain.",
    }),
    async (request, reply) => {
      assertMayAct(request, "manage domains");
      const { sid, selector } = request.params;
      const row = await domains.retireKey(request.account.sid, sid, selector);
      return sendResource(request, reply, DomainModel.render(domainView(row)));
    },
  );
}
