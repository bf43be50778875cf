import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  addDays,
  type DayCount,
  fixedRange,
  parseDay,
  parseUsageDate,
  periodOf,
  summarise,
  utcDay,
} from "../src/domain/usage-periods.js";

describe("usage periods: days", () => {
  test("a day is a UTC calendar day that exists", () => {
    assert.equal(utcDay(Date.UTC(2024, 1, 29, 23, 59, 59, 999)), "2024-02-29");
    assert.equal(utcDay(Date.UTC(2024, 2, 1)), "2024-03-01");
    assert.equal(parseDay("2024-02-29"), "2024-02-29");
    for (const bad of [
      "2023-02-29",
      "2024-02-30",
      "2024-13-01",
      "2024-1-01",
      "20240101",
      "2024-01-01T00:00:00Z",
      "",
    ]) {
      assert.equal(parseDay(bad), undefined, bad);
    }
    assert.equal(addDays("2024-02-28", 1), "2024-02-29");
    assert.equal(addDays("2024-03-01", -1), "2024-02-29");
    assert.equal(addDays("2023-12-31", 1), "2024-01-01");
  });

  test("StartDate and EndDate: a day, or an offset in days from today", () => {
    const today = "2026-03-01";
    assert.equal(parseUsageDate("2025-12-31", today), "2025-12-31");
    assert.equal(parseUsageDate("-30days", today), "2026-01-30");
    assert.equal(parseUsageDate("-1day", today), "2026-02-28");
    assert.equal(parseUsageDate("+1days", today), "2026-03-02");
    assert.equal(parseUsageDate("-0days", today), today);
    // A + left unescaped in a URL arrives as a space.
    assert.equal(parseUsageDate(" 30days", today), "2026-03-31");
    for (const bad of [
      "-30",
      "30days",
      "-30 days",
      "-30Days",
      "+1weeks",
      "-123456days",
      "yesterday",
      "2026-02-29",
    ]) {
      assert.equal(parseUsageDate(bad, today), undefined, bad);
    }
    // Offsets that leave years 0000-9999 are refused, not written as six-digit years.
    assert.equal(parseUsageDate("+99999days", "9999-01-01"), undefined);
    assert.equal(parseUsageDate("-99999days", "0001-01-01"), undefined);
  });

  test("Today, Yesterday, ThisMonth, LastMonth", () => {
    assert.deepEqual(fixedRange("today", "2024-03-01"), { start: "2024-03-01", end: "2024-03-01" });
    assert.deepEqual(fixedRange("yesterday", "2024-03-01"), { start: "2024-02-29", end: "2024-02-29" });
    assert.deepEqual(fixedRange("this-month", "2024-02-10"), { start: "2024-02-01", end: "2024-02-29" });
    assert.deepEqual(fixedRange("this-month", "2023-12-31"), { start: "2023-12-01", end: "2023-12-31" });
    assert.deepEqual(fixedRange("last-month", "2024-03-31"), { start: "2024-02-01", end: "2024-02-29" });
    assert.deepEqual(fixedRange("last-month", "2024-01-15"), { start: "2023-12-01", end: "2023-12-31" });
  });

  test("a period is cut to the range asked for", () => {
    const range = { start: "2024-01-15", end: "2024-03-10" };
    assert.deepEqual(periodOf("2024-01-20", "daily", range), { start: "2024-01-20", end: "2024-01-20" });
    assert.deepEqual(periodOf("2024-01-20", "monthly", range), { start: "2024-01-15", end: "2024-01-31" });
    assert.deepEqual(periodOf("2024-02-20", "monthly", range), { start: "2024-02-01", end: "2024-02-29" });
    assert.deepEqual(periodOf("2024-03-01", "monthly", range), { start: "2024-03-01", end: "2024-03-10" });
    assert.deepEqual(periodOf("2024-02-20", "yearly", range), range);
    assert.deepEqual(periodOf("2024-02-20", "all", range), range);
  });
});

describe("usage periods: counts to records", () => {
  const categories = ["email", "email-sent", "email-failed"] as const;
  const counts: DayCount[] = [
    { day: "2023-12-31", category: "email", count: 1 },
    { day: "2024-01-30", category: "email", count: 5 },
    { day: "2024-01-30", category: "email-sent", count: 4 },
    { day: "2024-01-31", category: "email-failed", count: 2 },
    { day: "2024-02-02", category: "email", count: 3 },
    { day: "2024-02-02", category: "email-bounced", count: 9 },
    { day: "2024-02-05", category: "email-bounced", count: 9 },
  ];
  const range = { start: "2024-01-01", end: "2024-02-29" };

  test("all: one record per category for the whole range, zeros included", () => {
    assert.deepEqual(summarise(counts, range, "all", categories), [
      { category: "email", start: "2024-01-01", end: "2024-02-29", count: 8 },
      { category: "email-sent", start: "2024-01-01", end: "2024-02-29", count: 4 },
      { category: "email-failed", start: "2024-01-01", end: "2024-02-29", count: 2 },
    ]);
    assert.deepEqual(summarise([], { start: "2024-01-01", end: "2024-01-01" }, "all", ["email-bounced"]), [
      { category: "email-bounced", start: "2024-01-01", end: "2024-01-01", count: 0 },
    ]);
  });

  test("daily: the active days, every category on each, oldest first", () => {
    const records = summarise(counts, range, "daily", categories);
    assert.deepEqual(
      records.map((r) => `${r.start}..${r.end} ${r.category}=${r.count}`),
      [
        "2024-01-30..2024-01-30 email=5",
        "2024-01-30..2024-01-30 email-sent=4",
        "2024-01-30..2024-01-30 email-failed=0",
        "2024-01-31..2024-01-31 email=0",
        "2024-01-31..2024-01-31 email-sent=0",
        "2024-01-31..2024-01-31 email-failed=2",
        "2024-02-02..2024-02-02 email=3",
        "2024-02-02..2024-02-02 email-sent=0",
        "2024-02-02..2024-02-02 email-failed=0",
      ],
      "2023-12-31 is outside the range; 2024-02-05 counted only a category not asked for",
    );
  });

  test("monthly and yearly add up the days of each period", () => {
    assert.deepEqual(
      summarise(counts, range, "monthly", ["email"]).map((r) => [r.start, r.end, r.count]),
      [
        ["2024-01-01", "2024-01-31", 5],
        ["2024-02-01", "2024-02-29", 3],
      ],
    );
    assert.deepEqual(
      summarise(counts, { start: "2023-06-01", end: "2024-12-31" }, "yearly", ["email"]).map((r) => [
        r.start,
        r.end,
        r.count,
      ]),
      [
        ["2023-06-01", "2023-12-31", 1],
        ["2024-01-01", "2024-12-31", 8],
      ],
    );
  });
});
