import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { API, request, sendEmail, startMailroom } from "./helpers/mailroom.js";
import { storeVariants } from "./helpers/stores.js";

for (const variant of await storeVariants()) {
  describe(`durability (${variant.kind})`, { skip: variant.skip }, () => {
    test("a restart keeps accounts, tokens and messages", async () => {
      const first = await startMailroom({ store: variant.kind, keepData: true });
      const account = await first.createAccount("keeper@example.org", first.admin.sid);
      const sent = await sendEmail(first, account, { Subject: "survives restarts" });
      assert.equal(sent.status, 200);
      await first.close();

      const second = await startMailroom({
        store: variant.kind,
        dataDir: first.dataDir,
        ...(first.databaseUrl ? { databaseUrl: first.databaseUrl } : {}),
        admin: first.admin,
      });
      try {
        const got = await request(
          second,
          "GET",
          `${API}/Accounts/${account.sid}/Email/Messages/${sent.json.sid}.json`,
          {
            auth: account,
          },
        );
        assert.equal(got.status, 200);
        assert.equal(got.json.subject, "survives restarts");
        assert.equal(got.json.date_sent, sent.json.date_sent);
      } finally {
        await second.close();
        await first.removeData();
      }
    });

    test("concurrent POSTs are all stored exactly once", async () => {
      const server = await startMailroom({ store: variant.kind });
      try {
        const account = await server.createAccount("burst@example.org", server.admin.sid);
        const count = 200;
        const responses = await Promise.all(
          Array.from({ length: count }, (_, i) => sendEmail(server, account, { Subject: `burst ${i}` })),
        );
        assert.ok(responses.every((r) => r.status === 200));
        const sids = new Set(responses.map((r) => r.json.sid));
        assert.equal(sids.size, count);
        const list = await request(
          server,
          "GET",
          `${API}/Accounts/${account.sid}/Email/Messages.json?PageSize=1000`,
          {
            auth: account,
          },
        );
        assert.equal(list.json.total, count);
        const listed = list.json.messages.map((m: { sid: string }) => m.sid);
        assert.equal(new Set(listed).size, count);
        assert.deepEqual(new Set(listed), sids);
        const subjects = new Set(list.json.messages.map((m: { subject: string }) => m.subject));
        assert.equal(subjects.size, count);
      } finally {
        await server.close();
      }
    });
  });
}
