import type { FastifyInstance } from "fastify";
import Type from "typebox";
import { ApiError } from "../../domain/errors.js";
import { quoteInput } from "../../domain/quote.js";
import { isUsageCategory, USAGE_CATEGORY_NAMES, type UsageCategory } from "../../domain/usage-categories.js";
import {
  type DayRange,
  earlierDay,
  type FixedRange,
  fixedRange,
  type Granularity,
  laterDay,
  parseUsageDate,
  summarise,
  utcDay,
} from "../../domain/usage-periods.js";
import { API_BASE } from "../../model/paths.js";
import { UsageRecordModel } from "../../model/usage-record.js";
import type { AccountRow, MailStore } from "../../store/types.js";
import { sendList } from "../representation.js";
import { AccountParams, errorResponses, JSON_AND_XML } from "../route-schemas.js";

const Category = Type.Optional(
  Type.String({ description: `One category: ${USAGE_CATEGORY_NAMES.join(", ")}. Absent: every one.` }),
);
const StartDate = Type.Optional(
  Type.String({
    description:
      "First day counted (UTC), yyyy-MM-dd, or an offset from today such as -30days. Default: the day the account was created.",
  }),
);
const EndDate = Type.Optional(
  Type.String({
    description: "Last day counted (UTC, included), yyyy-MM-dd, or an offset such as +1days. Default: today.",
  }),
);
/**
 * Every subresource takes the same filters, as Restcomm documents them. On Today, Yesterday, ThisMonth
 * and LastMonth, StartDate and EndDate narrow the fixed range (Restcomm's code ignored them: dropping a
 * parameter silently is what Mailroom never does).
 */
const UsageQuery = Type.Object({ Category, StartDate, EndDate }, { additionalProperties: false });

interface Subresource {
  /** After /Usage/Records; "" for the list itself. */
  path: string;
  summary: string;
  granularity: Granularity;
  fixed?: FixedRange;
}

const SUBRESOURCES: Subresource[] = [
  { path: "", summary: "Usage over a range, one record per category", granularity: "all" },
  { path: "/Daily", summary: "Usage per day", granularity: "daily" },
  { path: "/Monthly", summary: "Usage per month", granularity: "monthly" },
  { path: "/Yearly", summary: "Usage per year", granularity: "yearly" },
  { path: "/AllTime", summary: "Usage over a range (all time by default)", granularity: "all" },
  { path: "/Today", summary: "Usage today (UTC)", granularity: "all", fixed: "today" },
  { path: "/Yesterday", summary: "Usage yesterday (UTC)", granularity: "all", fixed: "yesterday" },
  { path: "/ThisMonth", summary: "Usage this month (UTC)", granularity: "all", fixed: "this-month" },
  { path: "/LastMonth", summary: "Usage last month (UTC)", granularity: "all", fixed: "last-month" },
];

/**
 * `/Accounts/{AccountSid}/Usage/Records` and its subresources (in the authenticated context). As
 * Restcomm's UsageEndpoint, the answer is the list of records itself: a bare JSON array, or
 * `<UsageRecords><UsageRecord>…` in XML, without paging. Counts come from usage_counters, summed
 * per day over shards (never a scan of the messages); an account's own usage only.
 */
export async function usageRecordRoutes(app: FastifyInstance, deps: { store: MailStore }): Promise<void> {
  const base = `${API_BASE}/Accounts/:accountSid/Usage/Records`;
  for (const sub of SUBRESOURCES) {
    app.get(
      `${base}${sub.path}`,
      {
        schema: {
          tags: ["Usage Records"],
          summary: sub.summary,
          params: AccountParams,
          querystring: UsageQuery,
          produces: JSON_AND_XML,
          response: { 200: Type.Array(UsageRecordModel.schema), ...errorResponses },
        },
      },
      async (request, reply) => {
        const account = request.account;
        const query = request.query as Record<string, string | undefined>;
        const categories = parseCategories(query.Category);
        const today = utcDay(Date.now());
        const range = requestedRange(query, account, today, sub);
        const counts = await deps.store.usageByDay({
          accountSid: account.sid,
          firstDay: range.start,
          lastDay: range.end,
          categories,
        });
        return sendList(request, reply, {
          element: "UsageRecords",
          jsonKey: "usage_records",
          paging: undefined,
          items: summarise(counts, range, sub.granularity, categories).map((total) =>
            UsageRecordModel.render({ accountSid: account.sid, total }),
          ),
        });
      },
    );
  }
}

/**
 * Every category when none is named. A name is matched ignoring case, and `_` stands for `-`:
 * Restcomm read the category as its Java enum's name (EMAIL_SENT), Twilio as `email-sent`.
 */
function parseCategories(raw: string | undefined): UsageCategory[] {
  if (raw === undefined || raw === "") return [...USAGE_CATEGORY_NAMES];
  const name = raw.toLowerCase().replaceAll("_", "-");
  if (!isUsageCategory(name)) {
    throw new ApiError(
      "UnknownUsageCategory",
      `Category ${quoteInput(raw)} is not a usage category; use one of ${USAGE_CATEGORY_NAMES.join(", ")}, or leave it out for all.`,
    );
  }
  return [name];
}

/**
 * StartDate..EndDate, both included: by default from the day the account was created to today. On a
 * subresource with a fixed range (Today…), they narrow it.
 */
function requestedRange(
  query: Record<string, string | undefined>,
  account: AccountRow,
  today: string,
  sub: Subresource,
): DayRange {
  const start = query.StartDate ? usageDate("StartDate", query.StartDate, today) : undefined;
  const end = query.EndDate ? usageDate("EndDate", query.EndDate, today) : undefined;
  if (start !== undefined && end !== undefined && end < start) {
    throw new ApiError(
      "UsageDatesReversed",
      `EndDate ${end} is before StartDate ${start}; both days are included, so give an EndDate on or after the StartDate.`,
    );
  }
  if (sub.fixed) {
    const fixed = fixedRange(sub.fixed, today);
    const narrowed = {
      start: laterDay(fixed.start, start ?? fixed.start),
      end: earlierDay(fixed.end, end ?? fixed.end),
    };
    if (narrowed.end < narrowed.start) {
      throw new ApiError(
        "UsageDatesReversed",
        `${sub.path.slice(1)} is ${fixed.start}..${fixed.end}, and no day of it is in StartDate..EndDate (${start ?? "…"}..${end ?? "…"}); leave them out, or ask /Usage/Records for another range.`,
      );
    }
    return narrowed;
  }
  if (start !== undefined && end !== undefined) return { start, end };
  if (start !== undefined) {
    if (today < start) {
      throw new ApiError(
        "UsageDatesReversed",
        `EndDate ${today} (today, by default) is before StartDate ${start}; give an EndDate on or after the StartDate.`,
      );
    }
    return { start, end: today };
  }
  const last = end ?? today;
  // Nothing is counted before an account exists; an EndDate before that is an empty range, not an error.
  return { start: earlierDay(utcDay(Number(account.date_created)), last), end: last };
}

function usageDate(name: string, value: string, today: string): string {
  const day = parseUsageDate(value, today);
  if (day === undefined) {
    throw new ApiError(
      "InvalidUsageDate",
      `${name} ${quoteInput(value)} is not a date; use yyyy-MM-dd (UTC), or an offset from today such as -30days or +1days.`,
    );
  }
  return day;
}
