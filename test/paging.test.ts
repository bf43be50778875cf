import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  API,
  type Credentials,
  request,
  sendEmail,
  startMailroom,
  type TestServer,
} from "./helpers/mailroom.js";
import { storeVariants } from "./helpers/stores.js";
import { waitFor } from "./helpers/wait.js";

for (const variant of await storeVariants()) {
  describe(`listing email messages: paging and filters (${variant.kind})`, { skip: variant.skip }, () => {
    let server: TestServer;
    let account: Credentials;
    const sids: string[] = [];
    const list = (query: string) =>
      request(server, "GET", `${API}/Accounts/${account.sid}/Email/Messages.json${query}`, { auth: account });

    before(async () => {
      server = await startMailroom({ store: variant.kind });
      account = await server.createAccount("pager@example.org", server.admin.sid);
      // Sequential, so creation order (and so newest-first order) is known.
      for (let i = 0; i < 7; i++) {
        const to = i % 2 === 0 ? "even@example.org" : "odd@example.org";
        const response = await sendEmail(server, account, { To: to, Subject: `message ${i}` });
        assert.equal(response.status, 200);
        sids.push(response.json.sid);
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    });
    after(async () => {
      await server?.close();
    });

    test("first, middle and last pages have the right bounds and links", async () => {
      const path = `${API}/Accounts/${account.sid}/Email/Messages.json`;
      const first = await list("?PageSize=3");
      assert.equal(first.status, 200);
      assert.equal(first.json.page, 0);
      assert.equal(first.json.num_pages, 3);
      assert.equal(first.json.page_size, 3);
      assert.equal(first.json.total, 7);
      assert.equal(first.json.start, 0);
      assert.equal(first.json.end, 2);
      assert.equal(first.json.uri, `${path}?Page=0&PageSize=3`);
      assert.equal(first.json.first_page_uri, `${path}?Page=0&PageSize=3`);
      assert.equal(first.json.previous_page_uri, undefined);
      assert.equal(first.json.next_page_uri, `${path}?Page=1&PageSize=3`);
      assert.equal(first.json.last_page_uri, `${path}?Page=2&PageSize=3`);
      assert.deepEqual(
        first.json.messages.map((m: { sid: string }) => m.sid),
        sids.slice(-3).reverse(),
        "newest first",
      );

      const last = await list("?Page=2&PageSize=3");
      assert.equal(last.json.start, 6);
      assert.equal(last.json.end, 6);
      assert.equal(last.json.messages.length, 1);
      assert.equal(last.json.messages[0].sid, sids[0]);
      assert.equal(last.json.next_page_uri, undefined);
      assert.equal(last.json.previous_page_uri, `${path}?Page=1&PageSize=3`);

      const exact = await list("?PageSize=7");
      assert.equal(exact.json.num_pages, 1);
      assert.equal(exact.json.end, 6);
      assert.equal(exact.json.next_page_uri, undefined);

      const beyond = await list("?Page=5&PageSize=3");
      assert.equal(beyond.status, 200);
      assert.deepEqual(beyond.json.messages, []);
      assert.equal(beyond.json.total, 7);
    });

    test("walking next_page_uri visits every message exactly once", async () => {
      const seen: string[] = [];
      let next: string | undefined = `${API}/Accounts/${account.sid}/Email/Messages.json?PageSize=2`;
      while (next) {
        const page = await request(server, "GET", next, { auth: account });
        seen.push(...page.json.messages.map((m: { sid: string }) => m.sid));
        next = page.json.next_page_uri;
      }
      assert.deepEqual(seen, [...sids].reverse());
    });

    test("default page size is 50; the cap is 1000 with a clear error above it", async () => {
      const defaults = await list("");
      assert.equal(defaults.json.page_size, 50);
      const max = await list("?PageSize=1000");
      assert.equal(max.status, 200);
      const over = await list("?PageSize=1001");
      assert.equal(over.status, 400);
      assert.equal(over.json.code, 20007);
      for (const bad of ["?PageSize=0", "?Page=-1", "?Page=abc", "?PageSize=1.5"]) {
        const response = await list(bad);
        assert.equal(response.status, 400, bad);
        assert.equal(response.json.code, 20006, bad);
      }
    });

    test("filters: To, From, Status, StartTime, EndTime, kept in the page links", async () => {
      const even = await list("?To=EVEN@example.org&PageSize=2");
      assert.equal(even.json.total, 4);
      assert.match(even.json.next_page_uri, /To=EVEN%40example.org&Page=1&PageSize=2/);
      assert.equal((await list("?From=jane.doe")).json.total, 7);
      assert.equal((await list("?From=nobody")).json.total, 0);
      assert.equal((await list("?To=%25")).json.total, 0, "LIKE wildcards are matched literally");
      // With no relay configured the messages are captured: wait until all are sent, then filter on it.
      await waitFor("every message captured", async () => (await list("?Status=sent")).json.total === 7);
      assert.equal((await list("?Status=queued")).json.total, 0);
      assert.equal((await list("?Status=failed")).json.total, 0);
      const today = new Date().toISOString().slice(0, 10);
      assert.equal((await list(`?StartTime=${today}&EndTime=${today}`)).json.total, 7);
      assert.equal((await list("?EndTime=2000-01-01")).json.total, 0);
      assert.equal((await list("?StartTime=2999-01-01")).json.total, 0);

      const badStatus = await list("?Status=bogus");
      assert.equal(badStatus.status, 400);
      assert.equal(badStatus.json.code, 20008);
      const badDate = await list("?StartTime=yesterday");
      assert.equal(badDate.status, 400);
      assert.equal(badDate.json.code, 20008);
    });
  });
}
