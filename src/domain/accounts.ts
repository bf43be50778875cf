/** Account rules shared by the API and the CLI; no I/O here. */
export const ACCOUNT_STATUSES = ["active", "suspended", "closed", "uninitialized"] as const;
export type AccountStatus = (typeof ACCOUNT_STATUSES)[number];

export function isAccountStatus(value: string): value is AccountStatus {
  return (ACCOUNT_STATUSES as readonly string[]).includes(value);
}

/**
 * Restcomm's super-user role: an account with it manages every account on the server (not only its
 * own lineage) and is not held to the sub-account limit. Only the operator (the CLI, the first start)
 * or another Administrator can give it. Every other role gets what Restcomm's default role,
 * Developer, may do: act for its own account and everything below it, and create sub-accounts.
 */
export const ROOT_ROLE = "Administrator";
export const DEFAULT_ROLE = "Developer";
export const ACCOUNT_TYPE = "Full";
export const MAX_TEXT_FIELD = 255;

/** The role as stored: `administrator` in any case is the Administrator role, other names are labels. */
export function normalizeRole(role: string): string {
  return role.toLowerCase() === ROOT_ROLE.toLowerCase() ? ROOT_ROLE : role;
}

export function isAdministrator(account: { role: string }): boolean {
  return account.role === ROOT_ROLE;
}

/**
 * An account may act only while it and every account above it are active: the first one in `lineage`
 * (the account, then its ancestors nearest first) that is not, or undefined when all are.
 */
export function firstInactive<T extends { status: string }>(
  account: T,
  ancestors: readonly T[],
): T | undefined {
  // Checked on every request: no array built for it.
  if (account.status !== "active") return account;
  return ancestors.find((ancestor) => ancestor.status !== "active");
}
