import type { FastifyReply, FastifyRequest } from "fastify";
import { firstInactive } from "../domain/accounts.js";
import { ApiError } from "../domain/errors.js";
import { containsControl } from "../domain/header-rules.js";
import { type AccountService, inactiveError, type Lineage } from "../services/accounts.js";
import type { AccountRow } from "../store/types.js";
import type { AuthThrottle } from "./auth-throttle.js";

declare module "fastify" {
  interface FastifyRequest {
    /** The account whose credentials authenticated this request. */
    actor: AccountRow;
    /** The account named in the URL (`:accountSid`), which the actor may act for. */
    account: AccountRow;
    /** The accounts above `account`, nearest first, read with it. */
    accountAncestors: AccountRow[];
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

/** Too many failed authentications from this address or for this user name: 429 with Retry-After. */
export class TooManyFailedLogins extends ApiError {
  readonly retryAfterSeconds: number;

  constructor(waitMs: number) {
    const seconds = Math.max(1, Math.ceil(waitMs / 1000));
    super(
      "TooManyFailedLogins",
      `Too many failed authentications; try again in ${seconds} s (see Retry-After). Check the Account SID (or email) and AuthToken.`,
    );
    this.retryAfterSeconds = seconds;
  }
}

/**
 * The hook of the authenticated context (every /restcomm/ route): throttles failed attempts,
 * authenticates the caller, refuses it unless it and every account above it are active, and
 * resolves the account the URL names, if it names one. It runs before the body is read, so a
 * request without valid credentials costs no parsing. A callback hook, synchronous when the caller's
 * lineage was read within the last second and the URL names the caller's own account (nearly every
 * request under load): no promise and no turn of the microtask queue per request.
 */
export function authenticate(accounts: AccountService, throttle: AuthThrottle) {
  return (request: FastifyRequest, _reply: FastifyReply, done: (error?: Error) => void): void => {
    let pending: Promise<void> | undefined;
    try {
      const address = request.ip;
      const now = Date.now();
      const addressWait = throttle.addressWait(address, now);
      if (addressWait > 0) throw new TooManyFailedLogins(addressWait);
      const credentials = parseBasic(request.headers.authorization);
      // No usable credentials is no guess: nothing to count.
      if (!credentials) throw new Unauthorized();
      const userWait = throttle.userWait(credentials.user, address, now);
      if (userWait > 0) throw new TooManyFailedLogins(userWait);
      const { user } = credentials;
      const found = accounts.authenticate(user, credentials.secret);
      pending =
        found instanceof Promise
          ? found.then((lineage) => admitCaller(request, accounts, throttle, user, address, now, lineage))
          : admitCaller(request, accounts, throttle, user, address, now, found);
    } catch (error) {
      done(error as Error);
      return;
    }
    if (pending === undefined) done();
    else pending.then(() => done(), done);
  };
}

/**
 * The rest of the hook once the credentials were checked: the throttle told, the lineage's statuses
 * checked, the caller and the URL's account set on the request. A promise only when the URL names
 * another account than the caller's own.
 */
function admitCaller(
  request: FastifyRequest,
  accounts: AccountService,
  throttle: AuthThrottle,
  user: string,
  address: string,
  now: number,
  lineage: Lineage | undefined,
): Promise<void> | undefined {
  if (!lineage) {
    throttle.failed(user, address, Date.now());
    throw new Unauthorized();
  }
  throttle.succeeded(user, address, now);
  const { account, ancestors } = lineage;
  const inactive = firstInactive(account, ancestors);
  if (inactive) throw inactiveError(inactive, account, "use the API");
  request.actor = account;
  const named = (request.params as { accountSid?: string } | undefined)?.accountSid;
  if (named === undefined) return undefined;
  // Most requests name the caller's own account: answered without another turn of the microtask queue.
  if (isSelf(account, named)) {
    request.account = account;
    request.accountAncestors = ancestors;
    return undefined;
  }
  return resolveTargetAccount(accounts, lineage, named).then((target) => {
    request.account = target.account;
    request.accountAncestors = target.ancestors;
  });
}

/**
 * The account named in the URL, with its ancestors, if the caller may act for it: itself, a
 * descendant, or any account for an Administrator. Anything else, including an account that does
 * not exist, is 403 so that account SIDs and emails cannot be probed.
 */
export async function resolveTargetAccount(
  accounts: AccountService,
  actor: Lineage,
  sidOrEmail: string,
): Promise<Lineage> {
  const self = actor.account;
  if (isSelf(self, sidOrEmail)) return actor;
  const target = await accounts.lookup(sidOrEmail);
  if (target && accounts.mayActFor(self, target)) return target;
  throw new ApiError(
    "Forbidden",
    `Account ${sidOrEmail} is neither your account nor one of its sub-accounts.`,
  );
}

function isSelf(account: AccountRow, sidOrEmail: string): boolean {
  return sidOrEmail === account.sid || sidOrEmail.toLowerCase() === account.email_address;
}

/**
 * Refuses to act as `account` (send email as it) unless it and every account above it are active,
 * whoever asks: a suspended account sends nothing, not even through its parent or an Administrator.
 */
export function assertMayAct(request: FastifyRequest, what: string): void {
  // The caller's own lineage was checked when it authenticated.
  if (request.account === request.actor) return;
  const inactive = firstInactive(request.account, request.accountAncestors);
  if (inactive) throw inactiveError(inactive, request.account, what);
}
