import type { AccountRow } from "../store/types.js";

/** How long Mailroom keeps a message's content and its metadata (the settings, or an account's effective values). */
export interface Retention {
  contentMs: number;
  metadataMs: number;
}

type RetentionOverrides = Pick<AccountRow, "content_retention_ms" | "metadata_retention_ms">;

/**
 * An account's effective retention: its own override, else its parent's effective value, and never
 * more than its parent's (a parent that lowers its value later lowers its children's with it).
 * `lineage` is the account and its ancestors, nearest first. Metadata is kept at least as long as
 * content: the row must outlive what it carries.
 */
export function effectiveRetention(
  lineage: readonly RetentionOverrides[],
  defaults: Retention,
  options: { raw?: boolean } = {},
): Retention {
  let contentMs = defaults.contentMs;
  let metadataMs = defaults.metadataMs;
  // From the root down: each level may shorten what it inherits; only the root may lengthen the defaults.
  for (let i = lineage.length - 1; i >= 0; i--) {
    const account = lineage[i] as RetentionOverrides;
    const root = i === lineage.length - 1;
    const content = account.content_retention_ms === null ? null : Number(account.content_retention_ms);
    const metadata = account.metadata_retention_ms === null ? null : Number(account.metadata_retention_ms);
    if (content !== null) contentMs = root ? content : Math.min(contentMs, content);
    if (metadata !== null) metadataMs = root ? metadata : Math.min(metadataMs, metadata);
  }
  // Raw: as configured (to refuse a change that would make them cross); otherwise as the purge applies them.
  return { contentMs, metadataMs: options.raw ? metadataMs : Math.max(metadataMs, contentMs) };
}

/**
 * Every account's effective retention, from the whole account table (accounts are few beside
 * messages; the purge reads them once per pass). Accounts whose values equal the defaults are left
 * out: the purge treats "every other account" as one group.
 */
export function retentionExceptions(
  accounts: readonly AccountRow[],
  defaults: Retention,
): Map<string, Retention> {
  const bySid = new Map(accounts.map((account) => [account.sid, account]));
  const exceptions = new Map<string, Retention>();
  for (const account of accounts) {
    const lineage: AccountRow[] = [];
    for (
      let at: AccountRow | undefined = account;
      at;
      at = at.parent_sid ? bySid.get(at.parent_sid) : undefined
    ) {
      lineage.push(at);
      if (lineage.length > 64) break; // a cycle cannot be made through the API; never loop on one
    }
    const retention = effectiveRetention(lineage, defaults);
    if (retention.contentMs !== defaults.contentMs || retention.metadataMs !== defaults.metadataMs) {
      exceptions.set(account.sid, retention);
    }
  }
  return exceptions;
}
