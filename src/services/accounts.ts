import {
  ACCOUNT_TYPE,
  type AccountStatus,
  DEFAULT_ROLE,
  isAccountStatus,
  MAX_TEXT_FIELD,
} from "../domain/accounts.js";
import { isValidAddress } from "../domain/addresses.js";
import { ApiError } from "../domain/errors.js";
import { containsControl, describeUnsafeCharacter } from "../domain/header-rules.js";
import { isSid, newAuthToken, newSid } from "../domain/ids.js";
import { quoteInput } from "../domain/quote.js";
import { authTokenMatches, hashAuthToken, hashPassword } from "../domain/secrets.js";
import type { AccountPatch, AccountRow, MailStore } from "../store/types.js";

export interface NewAccountInput {
  emailAddress: string;
  password?: string | undefined;
  friendlyName?: string | undefined;
  role?: string | undefined;
  status?: string | undefined;
  parentSid?: string | null | undefined;
}

/** An account together with the AuthToken that was just issued for it: the only moment it is known. */
export interface IssuedAccount {
  account: AccountRow;
  authToken: string;
}

export interface AccountUpdateInput {
  friendlyName?: string | undefined;
  status?: string | undefined;
  password?: string | undefined;
  rotateAuthToken?: boolean | undefined;
}

/**
 * How long an account read to authenticate a request is reused for the next ones: a sender posting
 * thousands of messages a second costs one lookup a second, not one per message. Changes made
 * through this process apply at once (they clear the cache); changes made by another process (the
 * CLI, another node on PostgreSQL) reach this one within this time.
 */
export const AUTH_CACHE_MS = 1000;
const AUTH_CACHE_ENTRIES = 10_000;

export class AccountService {
  /** Accounts recently read for authentication, by the SID or email they were looked up by. */
  private readonly recent = new Map<string, { account: AccountRow; until: number }>();
  /** Bumped by every local change: a lookup that began before one must not refill the cache. */
  private generation = 0;

  constructor(private readonly store: MailStore) {}

  async create(input: NewAccountInput): Promise<IssuedAccount> {
    const email = input.emailAddress.trim().toLowerCase();
    if (!isValidAddress(email)) {
      throw new ApiError(
        "InvalidAccountField",
        `EmailAddress ${quoteInput(input.emailAddress)} is not a valid email address.`,
      );
    }
    const status = input.status === undefined ? "active" : checkStatus(input.status);
    if (status === "closed") throw new ApiError("InvalidAccountStatus", "A new account cannot start closed.");
    if (await this.store.findAccountByEmail(email)) {
      throw new ApiError("EmailAddressTaken", `An account with EmailAddress ${email} already exists.`);
    }
    const now = Date.now();
    const authToken = newAuthToken();
    const account: AccountRow = {
      sid: newSid("AC"),
      parent_sid: input.parentSid ?? null,
      email_address: email,
      friendly_name: checkText("FriendlyName", input.friendlyName ?? email),
      type: ACCOUNT_TYPE,
      status,
      role: checkText("Role", input.role ?? DEFAULT_ROLE),
      auth_token_hash: hashAuthToken(authToken),
      password_hash: input.password === undefined ? null : hashPassword(checkPassword(input.password)),
      date_created: now,
      date_updated: now,
    };
    try {
      await this.store.insertAccount(account);
    } catch (error) {
      // Two creates racing for one address: the unique index decides, the loser gets a clear 409.
      if (await this.store.findAccountByEmail(email)) {
        throw new ApiError("EmailAddressTaken", `An account with EmailAddress ${email} already exists.`);
      }
      throw error;
    }
    return { account, authToken };
  }

  /** The account for `user` (an Account SID or email address) if `token` is its AuthToken. */
  async authenticate(user: string, token: string): Promise<AccountRow | undefined> {
    const account = await this.findRecent(user);
    return authTokenMatches(token, account?.auth_token_hash) ? account : undefined;
  }

  private forgetRecent(): void {
    this.recent.clear();
    this.generation += 1;
  }

  /** `find`, reusing what was read within AUTH_CACHE_MS. Unknown names are never cached. */
  private async findRecent(sidOrEmail: string): Promise<AccountRow | undefined> {
    // Emails are case-insensitive, SIDs are not (`ac…` is no SID).
    const key = sidOrEmail.includes("@") ? sidOrEmail.toLowerCase() : sidOrEmail;
    const now = Date.now();
    const hit = this.recent.get(key);
    if (hit && hit.until > now) return hit.account;
    const generation = this.generation;
    const account = await this.find(sidOrEmail);
    if (account && generation === this.generation) {
      // A crude bound: start over rather than track ages (entries live a second anyway).
      if (this.recent.size >= AUTH_CACHE_ENTRIES) this.recent.clear();
      this.recent.set(key, { account, until: now + AUTH_CACHE_MS });
    } else this.recent.delete(key);
    return account;
  }

  /** Finds an account by SID or by email address, as Restcomm allows both in URLs and credentials. */
  async find(sidOrEmail: string): Promise<AccountRow | undefined> {
    // Whatever cannot be an account identifier (control characters, odd lengths) is not looked up at all.
    if (sidOrEmail.includes("@")) {
      return isValidAddress(sidOrEmail) ? this.store.findAccountByEmail(sidOrEmail) : undefined;
    }
    return isSid(sidOrEmail, "AC") ? this.store.findAccountBySid(sidOrEmail) : undefined;
  }

  /** True when `actor` is `target` or one of its ancestors: parents act for their whole lineage. */
  async actsFor(actor: AccountRow, target: AccountRow): Promise<boolean> {
    let current: AccountRow | undefined = target;
    for (let depth = 0; current && depth < 100; depth++) {
      if (current.sid === actor.sid) return true;
      if (current.parent_sid === null) return false;
      current = await this.store.findAccountBySid(current.parent_sid);
    }
    return false;
  }

  listChildren(parentSid: string): Promise<AccountRow[]> {
    return this.store.listSubAccounts(parentSid);
  }

  /**
   * Applies an update by `actor` to `target`. Returns the fresh row and, when the token was rotated,
   * the new AuthToken. Status changes are for ancestors only, and `closed` is final and cascades.
   */
  async update(
    actor: AccountRow,
    target: AccountRow,
    input: AccountUpdateInput,
  ): Promise<{ account: AccountRow; authToken?: string }> {
    if (target.status === "closed") {
      throw new ApiError(
        "AccountClosed",
        `Account ${target.sid} is closed; a closed account cannot be changed.`,
      );
    }
    const now = Date.now();
    const patch: AccountPatch = { date_updated: now };
    if (input.friendlyName !== undefined) patch.friendly_name = checkText("FriendlyName", input.friendlyName);
    if (input.password !== undefined) patch.password_hash = hashPassword(checkPassword(input.password));
    let authToken: string | undefined;
    if (input.rotateAuthToken) {
      authToken = newAuthToken();
      patch.auth_token_hash = hashAuthToken(authToken);
    }
    let status: AccountStatus | undefined;
    if (input.status !== undefined) {
      status = checkStatus(input.status);
      if (status !== target.status && actor.sid === target.sid) {
        throw new ApiError("Forbidden", "An account cannot change its own Status; its parent account can.");
      }
      if (status !== "closed") patch.status = status;
    }
    // Whatever the outcome, no request may authenticate against what was read before this change.
    this.forgetRecent();
    if (!(await this.store.updateOpenAccount(target.sid, patch))) {
      throw new ApiError(
        "AccountClosed",
        `Account ${target.sid} is closed; a closed account cannot be changed.`,
      );
    }
    if (status === "closed") await this.store.closeAccountTree(target.sid, now);
    this.forgetRecent();
    const account = await this.store.findAccountBySid(target.sid);
    if (!account) throw new ApiError("AccountNotFound", `Account ${target.sid} was not found.`);
    return authToken === undefined ? { account } : { account, authToken };
  }
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
  return password;
}
