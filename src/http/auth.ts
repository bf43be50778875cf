import type { FastifyReply, FastifyRequest } from "fastify";
import { ApiError } from "../domain/errors.js";
import { containsControl } from "../domain/header-rules.js";
import type { AccountService } from "../services/accounts.js";
import type { AccountRow } from "../store/types.js";

declare module "fastify" {
  interface FastifyRequest {
    /** The account whose credentials authenticated this request. */
    actor: AccountRow;
    /** The account named in the URL (`:accountSid`), which the actor may act for. */
    account: AccountRow;
  }
}

/** Thrown for a missing or wrong credential: answered with Restcomm's empty 401 and realm header. */
export class Unauthorized extends ApiError {
  constructor() {
    super(
      "Unauthorized",
      "Authentication failed: use HTTP Basic with your Account SID (or email) and AuthToken.",
    );
  }
}

export const WWW_AUTHENTICATE = 'Basic realm="Restcomm realm"';

function parseBasic(header: string | undefined): { user: string; secret: string } | undefined {
  if (header === undefined) return undefined;
  const space = header.indexOf(" ");
  if (space === -1 || header.slice(0, space).toLowerCase() !== "basic") return undefined;
  const decoded = Buffer.from(header.slice(space + 1).trim(), "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon <= 0 || containsControl(decoded)) return undefined;
  return { user: decoded.slice(0, colon), secret: decoded.slice(colon + 1) };
}

/**
 * The hook of the authenticated context (every /restcomm/ route): authenticates the caller, refuses
 * accounts that are not active, and resolves the account the URL names, if it names one. It runs
 * before the body is read, so a request without valid credentials costs no parsing.
 */
export function authenticate(accounts: AccountService) {
  return async (request: FastifyRequest, _reply: FastifyReply): Promise<void> => {
    const credentials = parseBasic(request.headers.authorization);
    if (!credentials) throw new Unauthorized();
    const account = await accounts.authenticate(credentials.user, credentials.secret);
    if (!account) throw new Unauthorized();
    if (account.status !== "active") {
      throw new ApiError(
        "AccountNotActive",
        `Account ${account.sid} is ${account.status}; only active accounts may use the API.`,
      );
    }
    request.actor = account;
    const named = (request.params as { accountSid?: string } | undefined)?.accountSid;
    if (named !== undefined) request.account = await resolveTargetAccount(accounts, account, named);
  };
}

/**
 * The account named in the URL, if the caller may act for it (itself or a descendant). Anything
 * else, including an account that does not exist, is 403 so that account SIDs and emails cannot be probed.
 */
export async function resolveTargetAccount(
  accounts: AccountService,
  actor: AccountRow,
  sidOrEmail: string,
): Promise<AccountRow> {
  if (sidOrEmail === actor.sid || sidOrEmail.toLowerCase() === actor.email_address) return actor;
  const target = await accounts.find(sidOrEmail);
  if (target && (await accounts.actsFor(actor, target))) return target;
  throw new ApiError(
    "Forbidden",
    `Account ${sidOrEmail} is neither your account nor one of its sub-accounts.`,
  );
}
