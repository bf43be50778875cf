import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Ajv } from "ajv";
import { NotificationModel } from "../src/model/notification.js";
import { API, type Credentials, request, startMailroom, type TestServer } from "./helpers/mailroom.js";
import { insertRows, notificationRow } from "./helpers/raw-rows.js";
import { storeVariants } from "./helpers/stores.js";

// Reads of the Notifications resource over rows written straight into the store: the write path's own
// notifications (failed and deferred messages) are tested in restcomm-delivery.test.ts.
for (const variant of await storeVariants()) {
  describe(`Notifications: list, filters, one (${variant.kind})`, { skip: variant.skip }, () => {
    let server: TestServer;
    let account: Credentials;
    let other: Credentials;
    const T = Date.UTC(2026, 0, 15, 12, 0, 0);
    /** Oldest first, one minute apart. */
    const rows: ReturnType<typeof notificationRow>[] = [];
    const path = (sid: string) => `${API}/Accounts/${sid}/Notifications`;

    before(async () => {
      server = await startMailroom({ store: variant.kind });
      account = await server.createAccount("notified@example.org", server.admin.sid);
      other = await server.createAccount("other@example.org", server.admin.sid);
      const specs = [
        { log: 0, error_code: 13101, message_text: "Relay refused: 550 5.1.1 No Such User" },
        { log: 1, error_code: 13103, message_text: "Deferred: 451 4.3.0 greylisted, retry at 12:05" },
        { log: 0, error_code: 13101, message_text: "Relay refused: 554 5.7.1 spam" },
        {
          log: 0,
          error_code: 14400,
          message_sid: null,
          message_text: "The webhook answered 500 (100% of attempts failed)",
          request_url: "https://hooks.example.org/mailroom?x=1",
          request_method: "POST",
          request_variables: '{"type":"email.sent"}',
          response_headers: "content-type: text/plain",
          response_body: "oops",
        },
        { log: 1, error_code: 13104, message_text: "Deferred: relay unreachable" },
      ];
      specs.forEach((spec, i) => {
        rows.push(notificationRow(account.sid, { date_created: T + i * 60_000, ...spec }));
      });
      await insertRows(server, "notifications", [...rows, notificationRow(other.sid, { date_created: T })]);
    });
    after(async () => {
      await server?.close();
    });

    const list = (query = "", as = account) =>
      request(server, "GET", `${path(as.sid)}.json${query}`, { auth: as });
    const sids = (json: { notifications: Array<{ sid: string }> }) => json.notifications.map((n) => n.sid);

    test("Restcomm's Python client: GET Notifications.json lists the account's, newest first, with paging", async () => {
      const response = await list();
      assert.equal(response.status, 200, response.text);
      assert.match(response.headers.get("content-type") ?? "", /application\/json/);
      const json = response.json;
      assert.deepEqual(sids(json), rows.map((r) => r.sid).reverse());
      assert.equal(json.total, 5);
      assert.equal(json.page, 0);
      assert.equal(json.page_size, 50);
      assert.equal(json.num_pages, 1);
      assert.equal(json.uri, `${path(account.sid)}.json?Page=0&PageSize=50`);

      const webhook = json.notifications[1];
      const row = rows[3];
      assert.ok(row);
      assert.deepEqual(webhook, {
        sid: row.sid,
        date_created: "Thu, 15 Jan 2026 12:03:00 +0000",
        date_updated: "Thu, 15 Jan 2026 12:03:00 +0000",
        account_sid: account.sid,
        api_version: "2012-04-24",
        log: 0,
        error_code: 14400,
        more_info: "/restcomm/errors/14400.html",
        message_text: "The webhook answered 500 (100% of attempts failed)",
        message_date: "2026-01-15T12:03:00.000Z",
        request_url: "https://hooks.example.org/mailroom?x=1",
        request_method: "POST",
        request_variables: '{"type":"email.sent"}',
        response_headers: "content-type: text/plain",
        response_body: "oops",
        uri: `${path(account.sid)}/${row.sid}.json`,
      });
      assert.equal(json.notifications[0].message_sid, rows[4]?.message_sid, "message_sid when there is one");
      const validate = new Ajv({ strict: false }).compile(NotificationModel.schema);
      for (const item of json.notifications)
        assert.equal(validate(item), true, JSON.stringify(validate.errors));
    });

    test("an account's subresource_uris lead to its notifications, as Restcomm's did", async () => {
      const me = await request(server, "GET", `${API}/Accounts/${account.sid}.json`, { auth: account });
      assert.equal(me.json.subresource_uris.notifications, `${path(account.sid)}.json`);
      const listed = await request(server, "GET", me.json.subresource_uris.notifications, { auth: account });
      assert.equal(listed.json.total, 5);
    });

    test("Restcomm's Python client: ?ErrorCode=N and ?PageSize=N", async () => {
      const byCode = await list("?ErrorCode=13101");
      assert.equal(byCode.status, 200, byCode.text);
      assert.deepEqual(sids(byCode.json), [rows[2]?.sid, rows[0]?.sid]);
      assert.equal(byCode.json.total, 2);
      assert.ok(byCode.json.notifications.every((n: { error_code: number }) => n.error_code === 13101));

      const paged = await list("?PageSize=2");
      assert.equal(paged.status, 200, paged.text);
      assert.deepEqual(sids(paged.json), [rows[4]?.sid, rows[3]?.sid]);
      assert.equal(paged.json.num_pages, 3);
      assert.equal(paged.json.next_page_uri, `${path(account.sid)}.json?Page=1&PageSize=2`);
      const last = await list("?Page=2&PageSize=2");
      assert.deepEqual(sids(last.json), [rows[0]?.sid]);
    });

    test("Log, MessageText, RequestUrl, StartTime and EndTime narrow the list and stay in the paging links", async () => {
      const warnings = await list("?Log=1");
      assert.deepEqual(sids(warnings.json), [rows[4]?.sid, rows[1]?.sid]);
      const text = await list(`?MessageText=${encodeURIComponent("NO SUCH user")}`);
      assert.deepEqual(sids(text.json), [rows[0]?.sid], "a substring, case-insensitive");
      const percent = await list(`?MessageText=${encodeURIComponent("100%")}`);
      assert.deepEqual(sids(percent.json), [rows[3]?.sid], "LIKE's wildcards are plain characters");
      const url = await list(`?RequestUrl=${encodeURIComponent("https://hooks.example.org/mailroom?x=1")}`);
      assert.deepEqual(sids(url.json), [rows[3]?.sid]);
      const notPrefix = await list(`?RequestUrl=${encodeURIComponent("https://hooks.example.org/")}`);
      assert.deepEqual(sids(notPrefix.json), [], "RequestUrl is matched whole, as Restcomm's");
      const window = await list(
        `?StartTime=${encodeURIComponent("2026-01-15T12:01:00Z")}&EndTime=${encodeURIComponent("2026-01-15T12:03:00Z")}`,
      );
      assert.deepEqual(sids(window.json), [rows[3]?.sid, rows[2]?.sid, rows[1]?.sid]);
      const day = await list("?StartTime=2026-01-15&EndTime=2026-01-15");
      assert.equal(day.json.total, 5, "a yyyy-MM-dd EndTime includes its whole day");
      assert.equal((await list("?EndTime=2026-01-14")).json.total, 0);

      const both = await list("?ErrorCode=13101&Log=0&PageSize=1");
      assert.equal(both.json.total, 2);
      assert.equal(
        both.json.next_page_uri,
        `${path(account.sid)}.json?ErrorCode=13101&Log=0&Page=1&PageSize=1`,
      );
      const next = await request(server, "GET", both.json.next_page_uri, { auth: account });
      assert.deepEqual(sids(next.json), [rows[0]?.sid]);
    });

    test("XML by default: <Notifications> with Restcomm's paging attributes", async () => {
      const response = await request(server, "GET", `${path(account.sid)}?PageSize=1`, { auth: account });
      assert.equal(response.status, 200);
      assert.match(response.headers.get("content-type") ?? "", /application\/xml/);
      assert.match(
        response.text,
        /^<RestcommResponse><Notifications page="0" numpages="5" pagesize="1" total="5"/,
      );
      assert.match(response.text, /<Notification><Sid>NO[0-9a-f]{32}<\/Sid>/);
      assert.match(
        response.text,
        /<Log>1<\/Log><ErrorCode>13104<\/ErrorCode><MoreInfo>\/restcomm\/errors\/13104\.html<\/MoreInfo>/,
      );
    });

    test("one notification, in JSON and XML; another account's or a wrong SID is 14200", async () => {
      const row = rows[0];
      assert.ok(row);
      const one = await request(server, "GET", `${path(account.sid)}/${row.sid}.json`, { auth: account });
      assert.equal(one.status, 200, one.text);
      assert.equal(one.json.sid, row.sid);
      assert.equal(one.json.message_text, row.message_text);
      const xml = await request(server, "GET", `${path(account.sid)}/${row.sid}`, { auth: account });
      assert.match(xml.text, new RegExp(`^<RestcommResponse><Notification><Sid>${row.sid}</Sid>`));

      for (const [as, sid] of [
        [other, row.sid],
        [account, "NO0123456789abcdef0123456789abcdef"],
        [account, "EM0123456789abcdef0123456789abcdef"],
        [account, "nonsense"],
      ] as const) {
        const missing = await request(server, "GET", `${path(as.sid)}/${sid}.json`, { auth: as });
        assert.equal(missing.status, 404, sid);
        assert.equal(missing.json.code, 14200);
        assert.equal(missing.json.more_info, "/restcomm/errors/14200.html");
      }
    });

    test("an account sees only its own; a parent reads a sub-account's at the sub-account's URL", async () => {
      const mine = await list("", other);
      assert.equal(mine.json.total, 1);
      assert.equal(mine.json.notifications[0].account_sid, other.sid);
      const asParent = await request(server, "GET", `${path(account.sid)}.json`, { auth: server.admin });
      assert.equal(asParent.status, 200);
      assert.equal(asParent.json.total, 5);
      const ownAdmin = await list("", server.admin);
      assert.equal(ownAdmin.json.total, 0, "the parent's own list holds none of its sub-accounts'");
      const sideways = await request(server, "GET", `${path(account.sid)}.json`, { auth: other });
      assert.equal(sideways.status, 403);
    });

    test("bad filters are 400 with code 14201, unknown parameters 20009", async () => {
      for (const query of [
        "?ErrorCode=abc",
        "?ErrorCode=-1",
        "?Log=2",
        "?StartTime=yesterday",
        "?EndTime=2026-02-30",
        `?MessageText=${encodeURIComponent("a\u0001b")}`,
      ]) {
        const response = await list(query);
        assert.equal(response.status, 400, query);
        assert.equal(response.json.code, 14201, `${query}: ${response.text}`);
      }
      const unknown = await list("?SubAccounts=true");
      assert.equal(unknown.status, 400);
      assert.equal(unknown.json.code, 20009);
      const twice = await list("?ErrorCode=13101&ErrorCode=13103");
      assert.equal(twice.status, 400);
      assert.equal(twice.json.code, 20010);
    });

    test("more_info leads to the code's line of docs/errors.md, as HTML", async () => {
      const page = await request(server, "GET", "/restcomm/errors/13101.html");
      assert.equal(page.status, 200);
      assert.match(page.headers.get("content-type") ?? "", /text\/html/);
      assert.match(page.text, /<h1>13101: Message Rejected<\/h1>/);
      // The code's line of docs/errors.md: what it means and what to do.
      assert.match(page.text, /The relay refused the message, the sender or every recipient permanently/);
      assert.match(page.text, /<h2>What to do<\/h2><p>Fix what the reply names/);
      const mine = await request(server, "GET", "/restcomm/errors/14212.html");
      assert.match(mine.text, /<code>EndDate<\/code> is before <code>StartDate<\/code>/);
    });
  });
}
