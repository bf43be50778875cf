/**
 * The Usage Records categories for email: each is a counter in `usage_counters.category`, added to in
 * the transaction that makes the change it counts (the write path), and summed per day when read.
 * Restcomm had no email category; the names follow its lower-case, hyphenated style (`sms-outbound`).
 */
export const USAGE_CATEGORIES = [
  { name: "email", description: "Email messages accepted" },
  { name: "email-sent", description: "Email messages sent (the relay took them)" },
  { name: "email-failed", description: "Email messages failed" },
  { name: "email-bounced", description: "Email messages bounced" },
] as const;

export type UsageCategory = (typeof USAGE_CATEGORIES)[number]["name"];

export const USAGE_CATEGORY_NAMES: readonly UsageCategory[] = USAGE_CATEGORIES.map((c) => c.name);

/** Counts and usage are both in messages: one email is one unit, whatever its size. */
export const USAGE_UNIT = "messages";

export function isUsageCategory(name: string): name is UsageCategory {
  return (USAGE_CATEGORY_NAMES as readonly string[]).includes(name);
}

export function describeUsageCategory(name: UsageCategory): string {
  return USAGE_CATEGORIES.find((c) => c.name === name)?.description ?? name;
}
