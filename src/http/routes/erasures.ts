import type { FastifyInstance, FastifyRequest } from "fastify";
import type { Static } from "typebox";
import { ApiError } from "../../domain/errors.js";
import type { ErasureService } from "../../lifecycle/erasure.js";
import { CreateErasureParams, ErasureModel, erasuresPath } from "../../model/erasure.js";
import { sendResource } from "../representation.js";
import { AccountParams, errorResponses, FORM_AND_JSON, JSON_AND_XML, NoQuery } from "../route-schemas.js";

/**
 * `POST /Accounts/{AccountSid}/Email/Erasures` (in the authenticated context): the account itself,
 * an ancestor or an Administrator (the authentication hook refuses anyone else) erases one address.
 */
export async function erasureRoutes(app: FastifyInstance, deps: { erasures: ErasureService }): Promise<void> {
  app.post<{ Params: Static<typeof AccountParams>; Body: Static<typeof CreateErasureParams> }>(
    erasuresPath(":accountSid"),
    {
      schema: {
        tags: ["Erasures"],
        summary: "Erase an email address",
        description:
          "Replaces the address with its salted hash in every final message of the account and its sub-accounts sent to or from it (From, To, CC, BCC, Reply-To), and purges those messages' content. Messages not final yet are counted in messages_pending and left as they are. Recorded as an email.erased event per message and a Notification (17020).",
        params: AccountParams,
        querystring: NoQuery,
        body: CreateErasureParams,
        consumes: FORM_AND_JSON,
        produces: JSON_AND_XML,
        response: { 200: ErasureModel.schema, ...errorResponses },
      },
      // The missing parameter in words (17010), before the schema's generic message.
      preValidation: async (request: FastifyRequest) => {
        request.body ??= {};
        const body = request.body as Record<string, unknown>;
        if (body.Address === undefined || body.Address === null) {
          throw new ApiError(
            "ErasureAddressMissing",
            "Address can not be null: give the email address to erase.",
          );
        }
      },
    },
    async (request, reply) => {
      const erasure = await deps.erasures.erase(request.account, request.body.Address);
      return sendResource(request, reply, ErasureModel.render(erasure));
    },
  );
}
