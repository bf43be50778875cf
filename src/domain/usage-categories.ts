import { USAGE_CATEGORIES, type UsageCategory } from "../events/types.js";

/**
 * What Usage Records say about each category (the names, and what counts them, are the write path's:
 * src/events/types.ts, src/store/change-rows.ts). Restcomm had no email category; the names follow
 * its lower-case, hyphenated style (`sms-outbound`).
 */
const DESCRIPTIONS: Record<UsageCategory, string> = {
  email: "Email messages accepted",
  "email-sent": "Email messages sent (the relay took them)",
  "email-failed": "Email messages failed",
  "email-bounced": "Email messages bounced",
};

export type { UsageCategory };

export const USAGE_CATEGORY_NAMES: readonly UsageCategory[] = USAGE_CATEGORIES;

/** Counts and usage are both in messages: one email is one unit, whatever its size. */
export const USAGE_UNIT = "messages";

export function isUsageCategory(name: string): name is UsageCategory {
  return (USAGE_CATEGORY_NAMES as readonly string[]).includes(name);
}

export function describeUsageCategory(name: UsageCategory): string {
  return DESCRIPTIONS[name];
}
