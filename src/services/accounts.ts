import {
  ACCOUNT_TYPE,
  type AccountStatus,
  DEFAULT_ROLE,
  isAccountStatus,
  isAdministrator,
  MAX_TEXT_FIELD,
  normalizeRole,
  ROOT_ROLE,
} from "../domain/accounts.js";
import { isValidAddress } from "../domain/addresses.js";
import { ApiError } from "../domain/errors.js";
import { containsControl, describeUnsafeCharacter } from "../domain/header-rules.js";
import { isSid, newAuthToken, newSid } from "../domain/ids.js";
import { quoteInput } from "../domain/quote.js";
import { authTokenMatches, hashAuthToken, hashPassword, MAX_PASSWORD_BYTES } from "../domain/secrets.js";
import { DEFAULT_RETENTION, type RetentionInput, retentionPatch } from "../lifecycle/account-retention.js";
import { effectiveRetention, type Retention } from "../lifecycle/retention.js";
import type { AccountCreateChecks, AccountPatch, AccountRow, MailStore } from "../store/types.js";

/**
 * Who asks for an account change: an account, through the API, or the operator (the `mailroom
 * accounts` commands and the first start), who may do anything to any account.
 */
export type Actor = AccountRow | "operator";

export interface NewAccountInput {
  emailAddress: string;
  password?: string | undefined;
  friendlyName?: string | undefined;
  role?: string | undefined;
  status?: string | undefined;
  /** The parent, for the operator; an account's creates always go below the account itself. */
  parentSid?: string | null | undefined;
}

/** An account together with the AuthToken that was just issued for it: the only moment it is known. */
export interface IssuedAccount {
  account: AccountRow;
  authToken: string;
}

export interface AccountUpdateInput extends RetentionInput {
  /** The target's ancestors, nearest first: a retention change is checked against them (issue 16). */
  ancestors?: readonly AccountRow[] | undefined;
  friendlyName?: string | undefined;
  status?: string | undefined;
  password?: string | undefined;
  rotateAuthToken?: boolean | undefined;
  /** The operator only (the API has no Role on updates). */
  role?: string | undefined;
}

/** An account and the accounts above it, nearest first, as read together. */
export interface Lineage {
  account: AccountRow;
  ancestors: AccountRow[];
}

export interface AccountServiceOptions {
  /** The most accounts a non-Administrator account may have below it (MAILROOM_MAX_SUBACCOUNTS). */
  maxSubAccounts: number;
  /** MAILROOM_CONTENT_RETENTION and MAILROOM_METADATA_RETENTION (the defaults when left out). */
  retention?: Retention;
}

/**
 * How long an account read to authenticate a request is reused for the next ones: a sender posting
 * thousands of messages a second costs one lookup a second, not one per message. The account is read
 * with its whole lineage, so an ancestor's status is as fresh as the account's own. Changes made
 * through this process apply at once (they clear the cache); changes made by another process (the
 * CLI, another node on PostgreSQL) reach this one within this time, when the entry runs out.
 */
export const AUTH_CACHE_MS = 1000;
const AUTH_CACHE_ENTRIES = 10_000;
/** AccountService.recent: nothing read for that name within AUTH_CACHE_MS. */
const NOT_CACHED = Symbol("not cached");

export class AccountService {
  /**
   * Lineages recently read for authentication, by the SID or email they were looked up by. Names
   * that matched no account are remembered the same way, in a map of their own: a wrong token for a
   * known account and any token for an unknown one then cost the same (a map lookup and one hash
   * comparison), so timing does not tell which accounts exist, and a flood of made-up names evicts
   * no real account.
   */
  private readonly known = new Map<string, { lineage: Lineage; until: number }>();
  private readonly unknown = new Map<string, number>();
  /** Bumped by every local change: a lookup that began before one must not refill the cache. */
  private generation = 0;

  constructor(
    private readonly store: MailStore,
    private readonly options: AccountServiceOptions = { maxSubAccounts: 1000 },
  ) {}

  async create(input: NewAccountInput, actor: Actor = "operator"): Promise<IssuedAccount> {
    const email = input.emailAddress.trim().toLowerCase();
    if (!isValidAddress(email)) {
      throw new ApiError(
        "InvalidAccountField",
        `EmailAddress ${quoteInput(input.emailAddress)} is not a valid email address.`,
      );
    }
    const status = input.status === undefined ? "active" : checkStatus(input.status);
    if (status === "closed") throw new ApiError("InvalidAccountStatus", "A new account cannot start closed.");
    const role = normalizeRole(checkText("Role", input.role ?? DEFAULT_ROLE));
    if (role === ROOT_ROLE && actor !== "operator" && !isAdministrator(actor)) {
      throw new ApiError(
        "RoleNotAllowed",
        `Only an Administrator may create an account with Role ${ROOT_ROLE}; leave Role out or pick another.`,
      );
    }
    const friendlyName = checkText("FriendlyName", input.friendlyName ?? email);
    const password = input.password === undefined ? undefined : checkPassword(input.password);
    const parentSid = actor === "operator" ? (input.parentSid ?? null) : actor.sid;
    const now = Date.now();
    const authToken = newAuthToken();
    const account: AccountRow = {
      sid: newSid("AC"),
      parent_sid: parentSid,
      email_address: email,
      friendly_name: friendlyName,
      type: ACCOUNT_TYPE,
      status,
      role,
      auth_token_hash: hashAuthToken(authToken),
      password_hash: password === undefined ? null : await hashPassword(password),
      date_created: now,
      date_updated: now,
      content_retention_ms: null,
      metadata_retention_ms: null,
    };
    // The operator may create below a suspended account, never below a closed one; an account's
    // creates need its whole lineage active and, unless it is an Administrator, stay under the limit.
    const checks: AccountCreateChecks =
      actor === "operator"
        ? { activeLineage: false }
        : {
            activeLineage: true,
            descendantLimit: isAdministrator(actor)
              ? undefined
              : { limit: this.options.maxSubAccounts, exemptRole: ROOT_ROLE },
          };
    let outcome: Awaited<ReturnType<MailStore["createAccount"]>>;
    try {
      outcome = await this.store.createAccount(account, checks);
    } catch (error) {
      // Only an insert that bypassed the checks (none does) could race on the unique index.
      if (await this.store.findAccountByEmail(email)) throw emailTaken(email);
      throw error;
    }
    switch (outcome.kind) {
      case "created":
        // A name looked up (and found missing) a moment ago must not stay unknown here.
        this.forgetRecent();
        return { account, authToken };
      case "email-taken":
        throw emailTaken(email);
      case "parent-missing":
        throw new ApiError("AccountNotFound", `Account ${parentSid} (the parent): no such account.`);
      case "ancestor-inactive":
        throw inactiveError(
          outcome.ancestor,
          actor === "operator" ? undefined : actor,
          "create sub-accounts",
        );
      case "limit-reached":
        throw new ApiError(
          "SubAccountLimitReached",
          `Account ${outcome.ancestor.sid} already has ${outcome.limit} accounts below it (closed ones count), the most MAILROOM_MAX_SUBACCOUNTS allows; ask the operator to raise it.`,
        );
    }
  }

  /**
   * The lineage of `user` (an Account SID or email address) if `token` is its AuthToken. Synchronous
   * when the lineage was read within AUTH_CACHE_MS (nearly every request under load): no promise.
   */
  authenticate(user: string, token: string): Lineage | undefined | Promise<Lineage | undefined> {
    const check = (lineage: Lineage | undefined) =>
      authTokenMatches(token, lineage?.account.auth_token_hash) ? lineage : undefined;
    const recent = this.recent(user);
    return recent === NOT_CACHED ? this.lookup(user).then(check) : check(recent);
  }

  private forgetRecent(): void {
    this.known.clear();
    this.unknown.clear();
    this.generation += 1;
  }

  /**
   * The lineage of an Account SID or email address, reusing what was read within AUTH_CACHE_MS,
   * whether an account was found or not.
   */
  async lookup(sidOrEmail: string): Promise<Lineage | undefined> {
    const recent = this.recent(sidOrEmail);
    if (recent !== NOT_CACHED) return recent;
    // Emails are case-insensitive, SIDs are not (`ac…` is no SID).
    const key = sidOrEmail.includes("@") ? sidOrEmail.toLowerCase() : sidOrEmail;
    const now = Date.now();
    const generation = this.generation;
    const lineage = await this.readLineage(sidOrEmail);
    this.known.delete(key);
    this.unknown.delete(key);
    if (generation === this.generation) {
      // A crude bound: start over rather than track ages (entries live a second anyway).
      if (lineage) {
        if (this.known.size >= AUTH_CACHE_ENTRIES) this.known.clear();
        this.known.set(key, { lineage, until: now + AUTH_CACHE_MS });
      } else {
        if (this.unknown.size >= AUTH_CACHE_ENTRIES) this.unknown.clear();
        this.unknown.set(key, now + AUTH_CACHE_MS);
      }
    }
    return lineage;
  }

  /** What was read for this SID or email within AUTH_CACHE_MS (undefined: no such account), or NOT_CACHED. */
  private recent(sidOrEmail: string): Lineage | undefined | typeof NOT_CACHED {
    const key = sidOrEmail.includes("@") ? sidOrEmail.toLowerCase() : sidOrEmail;
    const now = Date.now();
    const hit = this.known.get(key);
    if (hit && hit.until > now) return hit.lineage;
    const missing = this.unknown.get(key);
    if (missing !== undefined && missing > now) return undefined;
    return NOT_CACHED;
  }

  private async readLineage(sidOrEmail: string): Promise<Lineage | undefined> {
    // Whatever cannot be an account identifier (control characters, odd lengths) is not looked up at all.
    let rows: AccountRow[];
    if (sidOrEmail.includes("@")) {
      if (!isValidAddress(sidOrEmail)) return undefined;
      rows = await this.store.findAccountLineage({ email: sidOrEmail });
    } else {
      if (!isSid(sidOrEmail, "AC")) return undefined;
      rows = await this.store.findAccountLineage({ sid: sidOrEmail });
    }
    const [account, ...ancestors] = rows;
    return account && { account, ancestors };
  }

  /** Finds an account by SID or by email address, as Restcomm allows both in URLs and credentials. */
  async find(sidOrEmail: string): Promise<AccountRow | undefined> {
    if (sidOrEmail.includes("@")) {
      return isValidAddress(sidOrEmail) ? this.store.findAccountByEmail(sidOrEmail) : undefined;
    }
    return isSid(sidOrEmail, "AC") ? this.store.findAccountBySid(sidOrEmail) : undefined;
  }

  /** True when `actor` may act for `target`: it is the target, one of its ancestors, or an Administrator. */
  mayActFor(actor: AccountRow, target: Lineage): boolean {
    return (
      actor.sid === target.account.sid ||
      isAdministrator(actor) ||
      target.ancestors.some((ancestor) => ancestor.sid === actor.sid)
    );
  }

  /** An account's effective retention; `lineage` is the account and its ancestors, nearest first. */
  retentionOf(lineage: readonly AccountRow[]): Retention {
    return effectiveRetention(lineage, this.options.retention ?? DEFAULT_RETENTION);
  }

  listChildren(parentSid: string): Promise<AccountRow[]> {
    return this.store.listSubAccounts(parentSid);
  }

  listAll(): Promise<AccountRow[]> {
    return this.store.listAccounts();
  }

  /**
   * Applies an update by `actor` to `target` (which the actor may act for). Returns the fresh row
   * and, when the token was rotated, the new AuthToken. An account cannot change its own Status;
   * `closed` is final and cascades.
   */
  async update(
    actor: Actor,
    target: AccountRow,
    input: AccountUpdateInput,
  ): Promise<{ account: AccountRow; authToken?: string }> {
    if (target.status === "closed") throw closedError(target.sid);
    const now = Date.now();
    const patch: AccountPatch = { date_updated: now };
    if (input.friendlyName !== undefined) patch.friendly_name = checkText("FriendlyName", input.friendlyName);
    if (input.role !== undefined) {
      if (actor !== "operator") {
        throw new ApiError(
          "Forbidden",
          "Role can be changed only by the operator (mailroom accounts update).",
        );
      }
      patch.role = normalizeRole(checkText("Role", input.role));
    }
    if (input.status !== undefined) {
      const status: AccountStatus = checkStatus(input.status);
      if (status !== target.status && actor !== "operator" && actor.sid === target.sid) {
        throw new ApiError(
          "Forbidden",
          "An account cannot change its own Status; its parent account (or an Administrator) can.",
        );
      }
      patch.status = status;
    }
    const retention = this.options.retention ?? DEFAULT_RETENTION;
    Object.assign(patch, retentionPatch(actor, target, input.ancestors ?? [], input, retention));
    if (input.password !== undefined) patch.password_hash = await hashPassword(checkPassword(input.password));
    let authToken: string | undefined;
    if (input.rotateAuthToken) {
      authToken = newAuthToken();
      patch.auth_token_hash = hashAuthToken(authToken);
    }
    // Whatever the outcome, no request may authenticate against what was read before this change.
    this.forgetRecent();
    if (!(await this.store.updateOpenAccount(target.sid, patch))) throw closedError(target.sid);
    this.forgetRecent();
    const account = await this.store.findAccountBySid(target.sid);
    if (!account) throw new ApiError("AccountNotFound", `Account ${target.sid} was not found.`);
    return authToken === undefined ? { account } : { account, authToken };
  }
}

/**
 * The refusal for an account that may not act because `inactive` (itself or an ancestor) is not
 * active. `acting` is the account that asked, when it was one.
 */
export function inactiveError(inactive: AccountRow, acting: AccountRow | undefined, what: string): ApiError {
  if (inactive.status === "closed" && acting === undefined) {
    return new ApiError(
      "AccountClosed",
      `Account ${inactive.sid} is closed; nothing can be created below it.`,
    );
  }
  if (acting === undefined || inactive.sid === acting.sid) {
    return new ApiError(
      "AccountNotActive",
      `Account ${inactive.sid} is ${inactive.status}; only active accounts may ${what}.`,
    );
  }
  return new ApiError(
    "AncestorNotActive",
    `Account ${acting.sid} cannot ${what}: account ${inactive.sid} above it is ${inactive.status}, and an account acts only while every account above it is active.`,
  );
}

function emailTaken(email: string): ApiError {
  return new ApiError("EmailAddressTaken", `An account with EmailAddress ${email} already exists.`);
}

function closedError(sid: string): ApiError {
  return new ApiError("AccountClosed", `Account ${sid} is closed; a closed account cannot be changed.`);
}

function checkStatus(value: string): AccountStatus {
  const status = value.trim().toLowerCase();
  if (!isAccountStatus(status)) {
    throw new ApiError(
      "InvalidAccountStatus",
      `Status ${quoteInput(value)} is not valid; use active, suspended, closed or uninitialized.`,
    );
  }
  return status;
}

function checkText(name: string, value: string): string {
  if (value.trim() === "") throw new ApiError("InvalidAccountField", `${name} must not be empty.`);
  if ([...value].length > MAX_TEXT_FIELD) {
    throw new ApiError("InvalidAccountField", `${name} is longer than ${MAX_TEXT_FIELD} characters.`);
  }
  if (containsControl(value))
    throw new ApiError("InvalidAccountField", `${name} must not contain control characters.`);
  // It is shown in XML, which cannot carry these.
  const unsafe = describeUnsafeCharacter(value);
  if (unsafe !== undefined)
    throw new ApiError("InvalidAccountField", `${name} contains ${unsafe}; remove it.`);
  return value;
}

function checkPassword(password: string): string {
  if (password.length < 8)
    throw new ApiError("InvalidAccountField", "Password must be at least 8 characters long.");
  if (Buffer.byteLength(password, "utf8") > MAX_PASSWORD_BYTES) {
    throw new ApiError(
      "PasswordTooLong",
      `Password is longer than ${MAX_PASSWORD_BYTES} bytes (in UTF-8); choose a shorter one.`,
    );
  }
  return password;
}
