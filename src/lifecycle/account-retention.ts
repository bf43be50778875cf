import { isAdministrator } from "../domain/accounts.js";
import { ApiError } from "../domain/errors.js";
import { quoteInput } from "../domain/quote.js";
import type { AccountPatch, AccountRow } from "../store/types.js";
import { DURATION_FORMS, formatDuration, parseDuration } from "./durations.js";
import { effectiveRetention, type Retention } from "./retention.js";

/** The retention settings when MAILROOM_CONTENT_RETENTION / MAILROOM_METADATA_RETENTION are not given. */
export const DEFAULT_RETENTION: Retention = { contentMs: 30 * 86_400_000, metadataMs: 400 * 86_400_000 };

export interface RetentionInput {
  /** A duration, or "" to inherit the parent's again; undefined leaves it as it is. */
  contentRetention?: string | undefined;
  metadataRetention?: string | undefined;
}

/**
 * The account fields a retention change writes, after its checks: only a parent (or any ancestor),
 * an Administrator or the operator may set it, never the account itself (it would lengthen what its
 * parent bounds); a value may not exceed the parent's effective one; metadata stays at least as long
 * as content. `ancestors` are the target's, nearest first.
 */
export function retentionPatch(
  actor: AccountRow | "operator",
  target: AccountRow,
  ancestors: readonly AccountRow[],
  input: RetentionInput,
  defaults: Retention,
): AccountPatch {
  if (input.contentRetention === undefined && input.metadataRetention === undefined) return {};
  if (actor !== "operator" && actor.sid === target.sid && !isAdministrator(actor)) {
    throw new ApiError(
      "RetentionNotAllowed",
      "An account cannot set its own ContentRetention or MetadataRetention; its parent account (or an Administrator) can.",
    );
  }
  const patch: AccountPatch = {};
  if (input.contentRetention !== undefined) {
    patch.content_retention_ms = readRetention("ContentRetention", input.contentRetention);
  }
  if (input.metadataRetention !== undefined) {
    patch.metadata_retention_ms = readRetention("MetadataRetention", input.metadataRetention);
  }
  const parent = ancestors.length > 0 ? effectiveRetention(ancestors, defaults) : undefined;
  if (parent) {
    const above = (name: string, ms: number | null | undefined, cap: number) => {
      if (ms === null || ms === undefined || ms <= cap) return;
      throw new ApiError(
        "RetentionAboveParent",
        `${name} ${formatDuration(ms)} is longer than the parent account's ${formatDuration(cap)}; a sub-account keeps its mail at most as long as its parent.`,
      );
    };
    above("ContentRetention", patch.content_retention_ms, parent.contentMs);
    above("MetadataRetention", patch.metadata_retention_ms, parent.metadataMs);
  }
  const after = { ...target, ...patch };
  const own = effectiveRetention([after, ...ancestors], defaults, { raw: true });
  if (own.metadataMs < own.contentMs) {
    throw new ApiError(
      "InvalidRetention",
      `MetadataRetention (${formatDuration(own.metadataMs)}) would be shorter than ContentRetention (${formatDuration(own.contentMs)}); a message's row must outlive its content.`,
    );
  }
  return patch;
}

function readRetention(name: string, value: string): number | null {
  if (value.trim() === "") return null;
  const ms = parseDuration(value);
  if (ms === undefined) {
    throw new ApiError(
      "InvalidRetention",
      `${name} ${quoteInput(value)} is not valid: give ${DURATION_FORMS}, or an empty value to inherit the parent's.`,
    );
  }
  return ms;
}
