import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Ajv } from "ajv";
import { addDays, type DayRange, fixedRange, utcDay } from "../src/domain/usage-periods.js";
import { UsageRecordModel } from "../src/model/usage-record.js";
import { API, type Credentials, request, startMailroom, type TestServer } from "./helpers/mailroom.js";
import { insertRows } from "./helpers/raw-rows.js";
import { storeVariants } from "./helpers/stores.js";
import { onOneDay } from "./helpers/usage.js";

// Reads of Usage Records over counters written straight into the store (days long past included); the
// write path's own counting is tested in restcomm-delivery.test.ts.
for (const variant of await storeVariants()) {
  describe(`Usage Records: subresources, ranges, categories (${variant.kind})`, {
    skip: variant.skip,
  }, () => {
    let server: TestServer;
    let account: Credentials;
    let child: Credentials;
    const records = (sid: string, sub = "") => `${API}/Accounts/${sid}/Usage/Records${sub}`;
    const get = (sub: string, query = "", as = account) =>
      request(server, "GET", `${records(as.sid, sub)}.json${query}`, { auth: as });
    /** Each record as "start..end category=count". */
    const brief = (json: Array<{ start_date: string; end_date: string; category: string; count: string }>) =>
      json.map((r) => `${r.start_date}..${r.end_date} ${r.category}=${r.count}`);

    before(async () => {
      server = await startMailroom({ store: variant.kind });
      account = await server.createAccount("usage@example.org", server.admin.sid);
      child = await server.createAccount("usage-child@example.org", account.sid);
      const counter = (sid: string, day: string, category: string, shard: number, count: number) => ({
        account_sid: sid,
        day,
        category,
        shard,
        count,
      });
      await insertRows(server, "usage_counters", [
        // Two shards of one day's count: the day's count is their sum.
        counter(account.sid, "2025-12-31", "email", 0, 2),
        counter(account.sid, "2025-12-31", "email", 3, 1),
        counter(account.sid, "2025-12-31", "email-sent", 1, 3),
        counter(account.sid, "2026-01-02", "email", 0, 4),
        counter(account.sid, "2026-01-02", "email-sent", 0, 3),
        counter(account.sid, "2026-01-02", "email-failed", 2, 1),
        counter(account.sid, "2026-02-10", "email", 5, 1),
        counter(account.sid, "2026-02-10", "email-failed", 5, 1),
        // Other accounts' counters are never added in, not even a sub-account's into its parent's.
        counter(child.sid, "2026-01-02", "email", 0, 100),
        counter(server.admin.sid, "2026-01-02", "email", 0, 1000),
      ]);
    });
    after(async () => {
      await server?.close();
    });

    test("Daily: one record per category for each day with usage, shards added up", async () => {
      const response = await get("/Daily", "?StartDate=2025-12-01&EndDate=2026-02-28");
      assert.equal(response.status, 200, response.text);
      assert.ok(Array.isArray(response.json), "a bare list, as Restcomm's UsageEndpoint answers");
      assert.deepEqual(brief(response.json), [
        "2025-12-31..2025-12-31 email=3",
        "2025-12-31..2025-12-31 email-sent=3",
        "2025-12-31..2025-12-31 email-failed=0",
        "2025-12-31..2025-12-31 email-bounced=0",
        "2026-01-02..2026-01-02 email=4",
        "2026-01-02..2026-01-02 email-sent=3",
        "2026-01-02..2026-01-02 email-failed=1",
        "2026-01-02..2026-01-02 email-bounced=0",
        "2026-02-10..2026-02-10 email=1",
        "2026-02-10..2026-02-10 email-sent=0",
        "2026-02-10..2026-02-10 email-failed=1",
        "2026-02-10..2026-02-10 email-bounced=0",
      ]);
      assert.deepEqual(response.json[1], {
        category: "email-sent",
        description: "Email messages sent (the relay took them)",
        account_sid: account.sid,
        start_date: "2025-12-31",
        end_date: "2025-12-31",
        usage: "3",
        usage_unit: "messages",
        count: "3",
        count_unit: "messages",
        price: "0",
        price_unit: "USD",
        uri: `${records(account.sid)}.json?Category=email-sent&StartDate=2025-12-31&EndDate=2025-12-31`,
      });
      const validate = new Ajv({ strict: false }).compile(UsageRecordModel.schema);
      for (const item of response.json) assert.equal(validate(item), true, JSON.stringify(validate.errors));
      assert.equal(
        validate({ ...response.json[0], count: 3 }),
        false,
        "counts are decimal text, as Restcomm's",
      );
      // A record's uri asks for exactly that record.
      const again = await request(server, "GET", response.json[1].uri, { auth: account });
      assert.deepEqual(again.json, [response.json[1]]);
    });

    test("Monthly, Yearly, AllTime and the list itself: periods cut to StartDate..EndDate", async () => {
      const monthly = await get("/Monthly", "?StartDate=2025-12-15&EndDate=2026-02-15&Category=email");
      assert.deepEqual(brief(monthly.json), [
        "2025-12-15..2025-12-31 email=3",
        "2026-01-01..2026-01-31 email=4",
        "2026-02-01..2026-02-15 email=1",
      ]);
      const yearly = await get("/Yearly", "?StartDate=2025-01-01&EndDate=2026-12-31&Category=email-failed");
      assert.deepEqual(brief(yearly.json), ["2026-01-01..2026-12-31 email-failed=2"]);
      for (const sub of ["", "/AllTime"]) {
        const all = await get(sub, "?StartDate=2025-12-31&EndDate=2026-01-31");
        assert.deepEqual(brief(all.json), [
          "2025-12-31..2026-01-31 email=7",
          "2025-12-31..2026-01-31 email-sent=6",
          "2025-12-31..2026-01-31 email-failed=1",
          "2025-12-31..2026-01-31 email-bounced=0",
        ]);
      }
      const quiet = await get("/AllTime", "?StartDate=2020-01-01&EndDate=2020-12-31&Category=email");
      assert.deepEqual(brief(quiet.json), ["2020-01-01..2020-12-31 email=0"], "nothing happened is a 0");
    });

    test("Category ignores case and takes _ for - (Restcomm read it as its enum's name)", async () => {
      for (const category of ["email-sent", "EMAIL_SENT", "Email-Sent"]) {
        const response = await get(
          "/AllTime",
          `?Category=${category}&StartDate=2025-12-31&EndDate=2025-12-31`,
        );
        assert.deepEqual(brief(response.json), ["2025-12-31..2025-12-31 email-sent=3"], category);
      }
    });

    test("Restcomm's Python client: GET Usage/Records/Daily.json, from the account's first day to today", async () => {
      await insertRows(server, "usage_counters", [
        { account_sid: child.sid, day: utcDay(Date.now()), category: "email", shard: 7, count: 5 },
      ]);
      await onOneDay(async (today) => {
        const response = await get("/Daily", "", child);
        assert.equal(response.status, 200, response.text);
        // The 2026-01-02 counter is older than the account: by default the range starts on its creation day.
        assert.deepEqual(brief(response.json), [
          `${today}..${today} email=5`,
          `${today}..${today} email-sent=0`,
          `${today}..${today} email-failed=0`,
          `${today}..${today} email-bounced=0`,
        ]);
      });
    });

    test("Today, Yesterday, ThisMonth and LastMonth: their fixed ranges, every category", async () => {
      const fixed: Array<[string, "today" | "yesterday" | "this-month" | "last-month"]> = [
        ["/Today", "today"],
        ["/Yesterday", "yesterday"],
        ["/ThisMonth", "this-month"],
        ["/LastMonth", "last-month"],
      ];
      for (const [sub, which] of fixed) {
        await onOneDay(async (today) => {
          const range: DayRange = fixedRange(which, today);
          const response = await get(sub, "?Category=email-bounced", account);
          assert.equal(response.status, 200, response.text);
          assert.deepEqual(brief(response.json), [`${range.start}..${range.end} email-bounced=0`], sub);
        });
      }
      // StartDate and EndDate narrow a fixed range (Restcomm documented them on every subresource).
      await onOneDay(async (today) => {
        const wide = await get("/Today", "?StartDate=2000-01-01&Category=email");
        assert.deepEqual(brief(wide.json), [`${today}..${today} email=0`]);
        const rest = await get("/ThisMonth", "?StartDate=-0days&Category=email");
        assert.deepEqual(brief(rest.json), [`${today}..${fixedRange("this-month", today).end} email=0`]);
        const outside = await get("/Today", "?EndDate=-1days");
        assert.equal(outside.status, 400);
        assert.equal(outside.json.code, 14212);
        assert.match(
          outside.json.message,
          new RegExp(`^Today is ${today}\\.\\.${today}, and no day of it is in`),
        );
      });
    });

    test("StartDate and EndDate as offsets from today", async () => {
      await insertRows(server, "usage_counters", [
        {
          account_sid: account.sid,
          day: addDays(utcDay(Date.now()), -2),
          category: "email-bounced",
          shard: 0,
          count: 2,
        },
      ]);
      await onOneDay(async (today) => {
        const response = await get("/Daily", "?StartDate=-3days&EndDate=%2B1days&Category=email-bounced");
        assert.equal(response.status, 200, response.text);
        const day = addDays(today, -2);
        assert.deepEqual(brief(response.json), [`${day}..${day} email-bounced=2`]);
        // A + not escaped arrives as a space, and is read as +.
        const all = await get("/AllTime", "?StartDate=-3days&EndDate=+1days&Category=email-bounced");
        assert.deepEqual(brief(all.json), [`${addDays(today, -3)}..${addDays(today, 1)} email-bounced=2`]);
      });
    });

    test("XML: <UsageRecords><UsageRecord>", async () => {
      const response = await request(
        server,
        "GET",
        `${records(account.sid, "/Daily")}?StartDate=2026-02-10&EndDate=2026-02-10&Category=email`,
        { auth: account },
      );
      assert.equal(response.status, 200);
      assert.equal(
        response.text,
        `<RestcommResponse><UsageRecords><UsageRecord><Category>email</Category><Description>Email messages accepted</Description><AccountSid>${account.sid}</AccountSid><StartDate>2026-02-10</StartDate><EndDate>2026-02-10</EndDate><Usage>1</Usage><UsageUnit>messages</UsageUnit><Count>1</Count><CountUnit>messages</CountUnit><Price>0</Price><PriceUnit>USD</PriceUnit><Uri>${records(account.sid)}.json?Category=email&amp;StartDate=2026-02-10&amp;EndDate=2026-02-10</Uri></UsageRecord></UsageRecords></RestcommResponse>`,
      );
      const empty = await request(
        server,
        "GET",
        `${records(account.sid, "/Daily")}?StartDate=2020-01-01&EndDate=2020-01-02`,
        {
          auth: account,
        },
      );
      assert.equal(empty.text, "<RestcommResponse><UsageRecords/></RestcommResponse>");
    });

    test("a parent account's records hold its own usage only; it reads a sub-account's at its URL", async () => {
      const own = await get("/AllTime", "?StartDate=2026-01-02&EndDate=2026-01-02&Category=email");
      assert.deepEqual(brief(own.json), ["2026-01-02..2026-01-02 email=4"]);
      const asParent = await request(
        server,
        "GET",
        `${records(child.sid, "/AllTime")}.json?StartDate=2026-01-02&EndDate=2026-01-02&Category=email`,
        { auth: account },
      );
      assert.deepEqual(brief(asParent.json), ["2026-01-02..2026-01-02 email=100"]);
      const upwards = await get("/AllTime", "", { sid: account.sid, token: child.token });
      assert.equal(upwards.status, 401);
      const childOnParent = await request(server, "GET", `${records(account.sid)}.json`, { auth: child });
      assert.equal(childOnParent.status, 403);
    });

    test("invalid dates (14210), unknown categories (14211), EndDate before StartDate (14212)", async () => {
      const cases: Array<[string, string, number]> = [
        ["/Daily", "?StartDate=2026-02-30", 14210],
        ["/Daily", "?EndDate=01/02/2026", 14210],
        ["", "?StartDate=-30", 14210],
        ["/Monthly", "?StartDate=%2B123456days", 14210],
        ["/Daily", "?Category=sms", 14211],
        ["/Today", "?Category=emails", 14211],
        ["/Daily", "?StartDate=2026-02-01&EndDate=2026-01-31", 14212],
        ["/AllTime", "?StartDate=%2B10days", 14212],
        ["/Daily", "?IncludeSubaccounts=true", 20009],
        ["/Daily", "?PageSize=10", 20009],
      ];
      for (const [sub, query, code] of cases) {
        const response = await get(sub, query);
        assert.equal(response.status, 400, `${sub}${query}`);
        assert.equal(response.json.code, code, `${sub}${query}: ${response.text}`);
      }
      const weekly = await get("/Weekly");
      assert.equal(weekly.status, 404);
      assert.equal(
        weekly.json.code,
        20004,
        "Restcomm answered any other name as AllTime; Mailroom says there is none",
      );
      const reversed = await get("/AllTime", "?StartDate=%2B10days");
      assert.match(reversed.json.message, /today, by default/);
    });
  });
}
