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

for (const variant of await storeVariants()) {
  describe(`authentication and tenancy (${variant.kind})`, { skip: variant.skip }, () => {
    let server: TestServer;
    let parent: Credentials;
    let child: Credentials;
    let grandchild: Credentials;
    let stranger: Credentials;
    const messages = (sid: string) => `${API}/Accounts/${sid}/Email/Messages.json`;

    before(async () => {
      server = await startMailroom({ store: variant.kind });
      parent = await server.createAccount("parent@example.org", server.admin.sid);
      child = await server.createAccount("child@example.org", parent.sid);
      grandchild = await server.createAccount("grandchild@example.org", child.sid);
      stranger = await server.createAccount("stranger@example.org", server.admin.sid);
    });
    after(async () => {
      await server?.close();
    });

    const expect401 = (response: { status: number; text: string; headers: Headers }) => {
      assert.equal(response.status, 401);
      assert.equal(response.text, "", "Restcomm's 401 has an empty body");
      assert.equal(response.headers.get("www-authenticate"), 'Basic realm="Restcomm realm"');
    };

    test("no credentials, a wrong token or an unknown SID are 401 with the realm header", async () => {
      expect401(await request(server, "GET", messages(parent.sid)));
      expect401(await sendEmail(server, { sid: parent.sid, token: "0".repeat(32) }));
      expect401(await sendEmail(server, { sid: parent.sid, token: stranger.token }));
      expect401(await sendEmail(server, { sid: "AC00000000000000000000000000000000", token: parent.token }));
      expect401(
        await request(server, "GET", messages(parent.sid), { headers: { authorization: "Bearer abc" } }),
      );
      expect401(
        await request(server, "GET", messages(parent.sid), {
          headers: { authorization: "Basic !!!notbase64" },
        }),
      );
    });

    test("a wrong token right after the right one, within the cache second, is 401", async () => {
      const account = await server.createAccount("cached-then-wrong@example.org", server.admin.sid);
      const wrong = "f".repeat(32);
      assert.equal((await sendEmail(server, account)).status, 200);
      // The account is now in the authentication cache: the token must still be compared.
      expect401(await sendEmail(server, { sid: account.sid, token: wrong }));
      expect401(
        await request(server, "GET", messages(account.sid), {
          auth: { user: "Cached-Then-Wrong@example.org", token: wrong },
        }),
      );
      expect401(await sendEmail(server, { sid: account.sid, token: parent.token }));
      assert.equal((await sendEmail(server, account)).status, 200, "the right token still works");
    });

    test("the account's email address works as the user name, in any case", async () => {
      const response = await request(server, "POST", messages(parent.sid), {
        auth: { user: "Parent@Example.org", token: parent.token },
        form: { From: "a@example.org", To: "b@example.org", Body: "x", Subject: "by email" },
      });
      assert.equal(response.status, 200);
      assert.equal(response.json.account_sid, parent.sid);
      const byEmailPath = await request(server, "GET", `${API}/Accounts/parent@example.org.json`, {
        auth: { user: "parent@example.org", token: parent.token },
      });
      assert.equal(byEmailPath.json.sid, parent.sid);
    });

    test("a parent acts for its whole lineage; a sub-account gets 403 on its parent", async () => {
      const sent = await sendEmail(server, grandchild, { Subject: "from the grandchild" });
      assert.equal(sent.status, 200);
      const byParent = await request(
        server,
        "GET",
        `${API}/Accounts/${grandchild.sid}/Email/Messages/${sent.json.sid}.json`,
        {
          auth: parent,
        },
      );
      assert.equal(byParent.status, 200);
      assert.equal(byParent.json.subject, "from the grandchild");
      const sentForChild = await sendEmail(server, parent, {}, "json", child.sid);
      assert.equal(sentForChild.status, 200, "a parent may send as its sub-account");
      assert.equal(sentForChild.json.account_sid, child.sid);

      const up = await request(server, "GET", messages(parent.sid), { auth: child });
      assert.equal(up.status, 403);
      assert.equal(up.json.code, 10003);
      const upAccount = await request(server, "GET", `${API}/Accounts/${parent.sid}.json`, {
        auth: grandchild,
      });
      assert.equal(upAccount.status, 403);
    });

    test("another tenant's message is indistinguishable from a missing one", async () => {
      const sent = await sendEmail(server, parent, { Subject: "private" });
      // The stranger asks under its own account: same 404 as for a SID that never existed.
      const own = await request(
        server,
        "GET",
        `${API}/Accounts/${stranger.sid}/Email/Messages/${sent.json.sid}.json`,
        {
          auth: stranger,
        },
      );
      const missing = await request(
        server,
        "GET",
        `${API}/Accounts/${stranger.sid}/Email/Messages/EM${"0".repeat(32)}.json`,
        { auth: stranger },
      );
      assert.equal(own.status, 404);
      assert.equal(own.json.code, missing.json.code);
      assert.doesNotMatch(own.text, /private/);
      // Under the owner's account: 403, the same as for an account that does not exist.
      const foreign = await request(
        server,
        "GET",
        `${API}/Accounts/${parent.sid}/Email/Messages/${sent.json.sid}.json`,
        {
          auth: stranger,
        },
      );
      const noSuchAccount = await request(
        server,
        "GET",
        `${API}/Accounts/AC${"1".repeat(32)}/Email/Messages/${sent.json.sid}.json`,
        { auth: stranger },
      );
      assert.equal(foreign.status, 403);
      assert.equal(noSuchAccount.status, 403);
      const list = await request(server, "GET", messages(stranger.sid), { auth: stranger });
      assert.ok(list.json.messages.every((m: { account_sid: string }) => m.account_sid === stranger.sid));
    });

    test("a suspended account gets 403 and can neither send nor read; reactivated, it can", async () => {
      const victim = await server.createAccount("suspended@example.org", parent.sid);
      const suspend = await request(server, "POST", `${API}/Accounts/${victim.sid}.json`, {
        auth: parent,
        form: { Status: "suspended" },
      });
      assert.equal(suspend.status, 200);
      assert.equal(suspend.json.status, "suspended");
      const send = await sendEmail(server, victim);
      assert.equal(send.status, 403);
      assert.equal(send.json.code, 10002);
      const parentSendsForIt = await sendEmail(server, parent, {}, "json", victim.sid);
      assert.equal(
        parentSendsForIt.status,
        403,
        "a suspended account sends nothing, even through its parent",
      );
      const reactivate = await request(server, "POST", `${API}/Accounts/${victim.sid}.json`, {
        auth: parent,
        form: { Status: "active" },
      });
      assert.equal(reactivate.json.status, "active");
      assert.equal((await sendEmail(server, victim)).status, 200);
    });

    test("a sender's account is read once for a burst of requests, and a change through the API applies at once", async () => {
      const sender = await server.createAccount("burst@example.org", server.admin.sid);
      assert.equal((await sendEmail(server, sender)).status, 200);
      const { store } = server.mailroom;
      const findAccountBySid = store.findAccountBySid.bind(store);
      let lookups = 0;
      store.findAccountBySid = (sid) => {
        if (sid === sender.sid) lookups += 1;
        return findAccountBySid(sid);
      };
      try {
        for (let i = 0; i < 5; i++) assert.equal((await sendEmail(server, sender)).status, 200);
        assert.equal(lookups, 0, "authenticated from the account read a moment ago");
        const suspended = await request(server, "POST", `${API}/Accounts/${sender.sid}.json`, {
          auth: server.admin,
          form: { Status: "suspended" },
        });
        assert.equal(suspended.status, 200);
        assert.equal(
          (await sendEmail(server, sender)).status,
          403,
          "the suspension applies to the next request",
        );
      } finally {
        store.findAccountBySid = findAccountBySid;
      }
    });
  });
}
