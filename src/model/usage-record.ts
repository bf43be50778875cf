import Type from "typebox";
import { describeUsageCategory, USAGE_UNIT, type UsageCategory } from "../domain/usage-categories.js";
import type { UsageTotal } from "../domain/usage-periods.js";
import { usageRecordsPath } from "./paths.js";
import { field, ResourceModel, Schemas } from "./resource.js";

export interface UsageRecordSource {
  accountSid: string;
  total: UsageTotal<UsageCategory>;
}

const day = Type.String({ format: "date", examples: ["2026-11-29"] });
/** Restcomm (and Twilio) write counts and prices as decimal text: clients parse them as such. */
const decimal = Type.String({ pattern: "^\\d+$", examples: ["42"] });

/** One Usage Record: Restcomm's fields, in its order. */
export const UsageRecordModel = new ResourceModel<UsageRecordSource>(
  "UsageRecord",
  [
    field(
      "category",
      Schemas.text,
      "email, email-sent, email-failed or email-bounced.",
      (r) => r.total.category,
    ),
    field("description", Schemas.text, "The category in words.", (r) =>
      describeUsageCategory(r.total.category),
    ),
    field(
      "account_sid",
      Schemas.text,
      "The account (its own usage only, not its sub-accounts').",
      (r) => r.accountSid,
    ),
    field("start_date", day, "The first day counted (UTC).", (r) => r.total.start),
    field("end_date", day, "The last day counted (UTC), included.", (r) => r.total.end),
    field("usage", decimal, "How many messages, as text.", (r) => String(r.total.count)),
    field("usage_unit", Schemas.text, "Always messages.", () => USAGE_UNIT),
    field("count", decimal, "How many messages, as text (the same as usage).", (r) => String(r.total.count)),
    field("count_unit", Schemas.text, "Always messages.", () => USAGE_UNIT),
    field("price", decimal, "Always 0: Mailroom does not price email.", () => "0"),
    field("price_unit", Schemas.text, "USD, as Restcomm wrote it.", () => "USD"),
    field("uri", Schemas.text, "The Usage Records query that gives exactly this record.", (r) => {
      const query = new URLSearchParams({
        Category: r.total.category,
        StartDate: r.total.start,
        EndDate: r.total.end,
      });
      return `${usageRecordsPath(r.accountSid)}.json?${query.toString()}`;
    }),
  ],
  "How much of one category an account used over a period (both dates included, UTC days).",
);
