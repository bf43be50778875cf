/** Account rules shared by the API and the CLI; no I/O here. */
export const ACCOUNT_STATUSES = ["active", "suspended", "closed", "uninitialized"] as const;
export type AccountStatus = (typeof ACCOUNT_STATUSES)[number];

export function isAccountStatus(value: string): value is AccountStatus {
  return (ACCOUNT_STATUSES as readonly string[]).includes(value);
}

export const ROOT_ROLE = "Administrator";
export const DEFAULT_ROLE = "Developer";
export const ACCOUNT_TYPE = "Full";
export const MAX_TEXT_FIELD = 255;
