import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { ApiError } from "../../domain/errors.js";
import { optionalText } from "../../domain/params.js";
import type { AccountService } from "../../services/accounts.js";
import { authenticate, resolveTargetAccount } from "../auth.js";
import { sendList, sendResource } from "../representation.js";
import { bodyParams } from "../request-body.js";
import { API_BASE, accountResource } from "../resources.js";

type AccountParams = { Params: { account: string } };

export function registerAccountRoutes(app: FastifyInstance, accounts: AccountService): void {
  const preHandler = authenticate(accounts);

  // Restcomm lists the caller's sub-accounts.
  app.get(`${API_BASE}/Accounts`, { preHandler }, async (request, reply) => {
    const children = await accounts.listChildren(request.actor.sid);
    return sendList(request, reply, {
      element: "Accounts",
      jsonKey: "accounts",
      paging: undefined,
      items: children.map((child) => accountResource(child)),
    });
  });

  app.post(`${API_BASE}/Accounts`, { preHandler }, async (request, reply) => {
    const params = bodyParams(request);
    const emailAddress = text(params, "EmailAddress");
    const password = text(params, "Password");
    if (emailAddress === undefined)
      throw new ApiError("AccountFieldMissing", "EmailAddress can not be null.");
    if (password === undefined) throw new ApiError("AccountFieldMissing", "Password can not be null.");
    const issued = await accounts.create({
      emailAddress,
      password,
      friendlyName: text(params, "FriendlyName"),
      role: text(params, "Role"),
      status: text(params, "Status"),
      parentSid: request.actor.sid,
    });
    return sendResource(request, reply, accountResource(issued.account, issued.authToken));
  });

  app.get<AccountParams>(`${API_BASE}/Accounts/:account`, { preHandler }, async (request, reply) => {
    const target = await resolveTargetAccount(accounts, request.actor, request.params.account);
    return sendResource(request, reply, accountResource(target));
  });

  const update = async (request: FastifyRequest<AccountParams>, reply: FastifyReply) => {
    const target = await resolveTargetAccount(accounts, request.actor, request.params.account);
    const params = bodyParams(request);
    const rotate = text(params, "RotateAuthToken");
    if (rotate !== undefined && rotate !== "true" && rotate !== "false") {
      throw new ApiError("InvalidAccountField", `RotateAuthToken must be true or false, got "${rotate}".`);
    }
    const result = await accounts.update(request.actor, target, {
      friendlyName: text(params, "FriendlyName"),
      status: text(params, "Status"),
      password: text(params, "Password"),
      rotateAuthToken: rotate === "true",
    });
    return sendResource(request, reply, accountResource(result.account, result.authToken));
  };
  app.post<AccountParams>(`${API_BASE}/Accounts/:account`, { preHandler }, update);
  app.put<AccountParams>(`${API_BASE}/Accounts/:account`, { preHandler }, update);
}

function text(params: Record<string, unknown>, name: string): string | undefined {
  return optionalText(params, name, "InvalidAccountField");
}
