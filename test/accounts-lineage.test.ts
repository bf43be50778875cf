import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  API,
  type Credentials,
  request,
  sendEmail,
  startMailroom,
  startPeer,
  type TestServer,
} from "./helpers/mailroom.js";
import { storeVariants } from "./helpers/stores.js";
import { waitFor } from "./helpers/wait.js";

const accountPath = (sid: string) => `${API}/Accounts/${sid}.json`;
const messages = (sid: string) => `${API}/Accounts/${sid}/Email/Messages.json`;

for (const variant of await storeVariants()) {
  describe(`an account acts only while its whole lineage is active (${variant.kind})`, {
    skip: variant.skip,
  }, () => {
    let server: TestServer;
    before(async () => {
      server = await startMailroom({ store: variant.kind, env: { MAILROOM_MAX_SUBACCOUNTS: "3" } });
    });
    after(async () => {
      await server?.close();
    });

    const setStatus = (as: Credentials, sid: string, status: string) =>
      request(server, "POST", accountPath(sid), { auth: as, form: { Status: status } });

    /** Everything an active account does: send, list its messages and sub-accounts, create one. */
    async function actions(account: Credentials, tag: string) {
      return {
        send: await sendEmail(server, account),
        list: await request(server, "GET", messages(account.sid), { auth: account }),
        children: await request(server, "GET", `${API}/Accounts.json`, { auth: account }),
        create: await request(server, "POST", `${API}/Accounts.json`, {
          auth: account,
          form: { EmailAddress: `${tag}@example.org`, Password: "long enough" },
        }),
      };
    }

    for (const status of ["suspended", "uninitialized"]) {
      test(`an account that is ${status}: its sub-accounts can do nothing until it is active again`, async () => {
        const top = await server.createAccount(`top-${status}@example.org`, server.admin.sid);
        const child = await server.createAccount(`child-${status}@example.org`, top.sid);
        const grandchild = await server.createAccount(`grandchild-${status}@example.org`, child.sid);
        const changed = await setStatus(server.admin, top.sid, status);
        assert.equal(changed.status, 200, changed.text);

        for (const [name, account] of [
          ["child", child],
          ["grandchild", grandchild],
        ] as const) {
          const refused = await actions(account, `${name}-${status}-refused`);
          for (const [action, response] of Object.entries(refused)) {
            assert.equal(response.status, 403, `${name} ${action}: ${response.text}`);
            assert.equal(response.json.code, 10013, `${name} ${action}`);
            assert.match(response.json.message, new RegExp(`${top.sid} above it is ${status}`));
          }
        }
        // Not even through an ancestor or an Administrator: the lineage decides, not who asks.
        const forChild = await sendEmail(server, server.admin, {}, "json", child.sid);
        assert.equal(forChild.status, 403);
        assert.equal(forChild.json.code, 10013);
        // Its own status is untouched: reading it through the Administrator says so.
        const read = await request(server, "GET", accountPath(grandchild.sid), { auth: server.admin });
        assert.equal(read.json.status, "active");

        assert.equal((await setStatus(server.admin, top.sid, "active")).status, 200);
        const allowed = await actions(grandchild, `grandchild-${status}-allowed`);
        for (const [action, response] of Object.entries(allowed)) {
          assert.equal(response.status, 200, `grandchild ${action} once active again: ${response.text}`);
        }
      });
    }

    test("the lineage is read once for a burst of requests; a change through the API applies at once", async () => {
      const top = await server.createAccount("burst-top@example.org", server.admin.sid);
      const leaf = await server.createAccount("burst-leaf@example.org", top.sid);
      assert.equal((await sendEmail(server, leaf)).status, 200);
      const { store } = server.mailroom;
      const methods = ["findAccountLineage", "findAccountBySid", "findAccountByEmail"] as const;
      const originals = methods.map((name) => store[name]);
      let lookups = 0;
      for (const name of methods) {
        const original = store[name].bind(store) as (...args: never[]) => Promise<unknown>;
        (store as unknown as Record<string, unknown>)[name] = (...args: never[]) => {
          lookups += 1;
          return original(...args);
        };
      }
      try {
        for (let i = 0; i < 5; i++) assert.equal((await sendEmail(server, leaf)).status, 200);
        assert.equal(lookups, 0, "the account and its ancestors come from what was read a moment ago");
        assert.equal((await setStatus(server.admin, top.sid, "suspended")).status, 200);
        const refused = await sendEmail(server, leaf);
        assert.equal(refused.status, 403, "the ancestor's suspension applies to the next request");
        assert.equal(refused.json.code, 10013);
      } finally {
        methods.forEach((name, i) => {
          (store as unknown as Record<string, unknown>)[name] = originals[i];
        });
      }
    });

    test("a suspension made by another server reaches this one within the cache second", {
      skip:
        variant.kind === "sqlite"
          ? "one server per SQLite file (the CLI's changes are tested in cli-accounts)"
          : false,
    }, async () => {
      const other = await startPeer(server);
      try {
        const top = await server.createAccount("remote-top@example.org", server.admin.sid);
        const leaf = await server.createAccount("remote-leaf@example.org", top.sid);
        assert.equal((await sendEmail(server, leaf)).status, 200);
        const suspended = await request(other, "POST", accountPath(top.sid), {
          auth: server.admin,
          form: { Status: "suspended" },
        });
        assert.equal(suspended.status, 200);
        // No change went through the first server: only its cache running out brings the news.
        await waitFor(
          "the first server to see the suspension",
          async () => (await sendEmail(server, leaf)).status === 403,
        );
      } finally {
        await other.close();
      }
    });

    test("an Administrator manages every account; other accounts only their own lineage", async () => {
      // A top-level tenant, as the operator creates it: outside the Administrator's lineage.
      const tenant = await server.createAccount("tenant@example.org");
      const stranger = await server.createAccount("stranger-tenant@example.org");
      const other = await request(server, "GET", accountPath(tenant.sid), { auth: stranger });
      assert.equal(other.status, 403);
      assert.equal(other.json.code, 10003);

      const read = await request(server, "GET", accountPath(tenant.sid), { auth: server.admin });
      assert.equal(read.status, 200);
      const sent = await sendEmail(server, server.admin, {}, "json", tenant.sid);
      assert.equal(sent.status, 200, "an Administrator may send as any active account");
      const listed = await request(server, "GET", messages(tenant.sid), { auth: server.admin });
      assert.equal(listed.json.total, 1);

      // A leaked root token: the Administrator rotates it and suspends the account.
      const rotated = await request(server, "POST", accountPath(tenant.sid), {
        auth: server.admin,
        form: { RotateAuthToken: "true" },
      });
      assert.equal(rotated.status, 200);
      assert.equal((await sendEmail(server, tenant)).status, 401, "the leaked token stops working");
      const fresh = { sid: tenant.sid, token: rotated.json.auth_token };
      assert.equal((await setStatus(server.admin, tenant.sid, "suspended")).status, 200);
      assert.equal((await sendEmail(server, fresh)).status, 403);
      assert.equal((await setStatus(server.admin, tenant.sid, "closed")).status, 200);
      const self = await setStatus(server.admin, server.admin.sid, "suspended");
      assert.equal(self.status, 403, "not even an Administrator changes its own status");
    });

    test("only an Administrator gives the Administrator role", async () => {
      const developer = await server.createAccount("developer@example.org", server.admin.sid);
      for (const role of ["Administrator", "administrator"]) {
        const refused = await request(server, "POST", `${API}/Accounts.json`, {
          auth: developer,
          form: { EmailAddress: `escalate-${role}@example.org`, Password: "long enough", Role: role },
        });
        assert.equal(refused.status, 403, role);
        assert.equal(refused.json.code, 10014);
      }
      const byAdmin = await request(server, "POST", `${API}/Accounts.json`, {
        auth: server.admin,
        form: { EmailAddress: "second-admin@example.org", Password: "long enough", Role: "administrator" },
      });
      assert.equal(byAdmin.status, 200);
      assert.equal(byAdmin.json.role, "Administrator");
      const labelled = await request(server, "POST", `${API}/Accounts.json`, {
        auth: developer,
        form: { EmailAddress: "labelled@example.org", Password: "long enough", Role: "Billing" },
      });
      assert.equal(labelled.status, 200, "other roles are labels");
      assert.equal(labelled.json.role, "Billing");
    });

    test("an account may have at most MAILROOM_MAX_SUBACCOUNTS accounts below it, all levels and closed ones counted", async () => {
      const tenant = await server.createAccount("capped@example.org", server.admin.sid);
      const create = (as: Credentials, email: string) =>
        request(server, "POST", `${API}/Accounts.json`, {
          auth: as,
          form: { EmailAddress: email, Password: "long enough" },
        });
      const first = await create(tenant, "capped-1@example.org");
      assert.equal(first.status, 200);
      const child = { sid: first.json.sid, token: first.json.auth_token };
      assert.equal((await create(child, "capped-1-1@example.org")).status, 200, "a grandchild counts too");
      const second = await create(tenant, "capped-2@example.org");
      assert.equal(second.status, 200);
      assert.equal((await setStatus(tenant, second.json.sid, "closed")).status, 200);

      for (const [as, email] of [
        [tenant, "capped-3@example.org"],
        [child, "capped-1-2@example.org"],
      ] as const) {
        const over = await create(as, email);
        assert.equal(over.status, 403, email);
        assert.equal(over.json.code, 10010);
        assert.match(over.json.message, new RegExp(`${tenant.sid} already has 3 accounts below it`));
      }
      // Administrators are not limited.
      for (let i = 0; i < 4; i++) {
        const made = await create(server.admin, `unlimited-${i}@example.org`);
        assert.equal(made.status, 200);
      }
    });
  });
}
