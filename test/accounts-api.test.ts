import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { API, request, sendEmail, startMailroom, type TestServer } from "./helpers/mailroom.js";
import { storeVariants } from "./helpers/stores.js";

for (const variant of await storeVariants()) {
  describe(`Accounts API (${variant.kind})`, { skip: variant.skip }, () => {
    let server: TestServer;
    before(async () => {
      server = await startMailroom({ store: variant.kind });
    });
    after(async () => {
      await server?.close();
    });
    const accounts = `${API}/Accounts.json`;

    test("create a sub-account: its AuthToken is shown once and works", async () => {
      const created = await request(server, "POST", accounts, {
        auth: server.admin,
        form: { EmailAddress: "New.User@Example.org", Password: "correct horse", FriendlyName: "New user" },
      });
      assert.equal(created.status, 200);
      assert.match(created.json.sid, /^AC[0-9a-f]{32}$/);
      assert.equal(created.json.email_address, "new.user@example.org");
      assert.equal(created.json.friendly_name, "New user");
      assert.equal(created.json.status, "active");
      assert.equal(created.json.type, "Full");
      assert.equal(created.json.parent_sid, server.admin.sid);
      assert.match(created.json.auth_token, /^[0-9a-f]{32}$/);
      assert.match(created.json.date_created, /^\w{3}, \d{1,2} \w{3} \d{4} \d{2}:\d{2}:\d{2} \+0000$/);
      assert.equal(
        created.json.subresource_uris.email_messages,
        `${API}/Accounts/${created.json.sid}/Email/Messages.json`,
      );

      const credentials = { sid: created.json.sid, token: created.json.auth_token };
      assert.equal((await sendEmail(server, credentials)).status, 200);
      const fetched = await request(server, "GET", `${API}/Accounts/${created.json.sid}.json`, {
        auth: credentials,
      });
      assert.equal(fetched.status, 200);
      assert.equal(fetched.json.auth_token, undefined, "the token is never shown again");

      const listed = await request(server, "GET", accounts, { auth: server.admin });
      assert.ok(listed.json.some((a: { sid: string }) => a.sid === created.json.sid));
      const xml = await request(server, "GET", `${API}/Accounts/${created.json.sid}`, { auth: credentials });
      assert.match(xml.text, /^<RestcommResponse><Account><Sid>AC/);
    });

    test("create refuses a taken or invalid email, a missing password, a bad status", async () => {
      const form = { EmailAddress: "dup@example.org", Password: "long enough" };
      assert.equal((await request(server, "POST", accounts, { auth: server.admin, form })).status, 200);
      const dup = await request(server, "POST", accounts, {
        auth: server.admin,
        form: { ...form, EmailAddress: "DUP@example.org" },
      });
      assert.equal(dup.status, 409);
      assert.equal(dup.json.code, 10005);
      const cases: Array<[Record<string, string>, number]> = [
        [{ Password: "long enough" }, 10009],
        [{ EmailAddress: "x@example.org" }, 10009],
        [{ EmailAddress: "not an email", Password: "long enough" }, 10008],
        [{ EmailAddress: "y@example.org", Password: "short" }, 10008],
        [{ EmailAddress: "z@example.org", Password: "long enough", Status: "weird" }, 10006],
      ];
      for (const [fields, code] of cases) {
        const response = await request(server, "POST", accounts, { auth: server.admin, form: fields });
        assert.equal(response.status, 400, JSON.stringify(fields));
        assert.equal(response.json.code, code, JSON.stringify(fields));
      }
    });

    test("update FriendlyName with POST or PUT, and rotate the AuthToken", async () => {
      const account = await server.createAccount("rotate@example.org", server.admin.sid);
      const renamed = await request(server, "PUT", `${API}/Accounts/${account.sid}.json`, {
        auth: account,
        form: { FriendlyName: "Renamed" },
      });
      assert.equal(renamed.status, 200);
      assert.equal(renamed.json.friendly_name, "Renamed");
      const rotated = await request(server, "POST", `${API}/Accounts/${account.sid}.json`, {
        auth: account,
        form: { RotateAuthToken: "true" },
      });
      assert.equal(rotated.status, 200);
      assert.match(rotated.json.auth_token, /^[0-9a-f]{32}$/);
      assert.notEqual(rotated.json.auth_token, account.token);
      assert.equal((await sendEmail(server, account)).status, 401, "the old token stops working");
      assert.equal(
        (await sendEmail(server, { sid: account.sid, token: rotated.json.auth_token })).status,
        200,
      );
      const selfSuspend = await request(server, "POST", `${API}/Accounts/${account.sid}.json`, {
        auth: { sid: account.sid, token: rotated.json.auth_token },
        form: { Status: "suspended" },
      });
      assert.equal(selfSuspend.status, 403);
    });

    test("closing is final and cascades to every sub-account", async () => {
      const top = await server.createAccount("closing@example.org", server.admin.sid);
      const middle = await server.createAccount("closing-child@example.org", top.sid);
      const bottom = await server.createAccount("closing-grandchild@example.org", middle.sid);
      const closed = await request(server, "POST", `${API}/Accounts/${top.sid}.json`, {
        auth: server.admin,
        form: { Status: "closed" },
      });
      assert.equal(closed.status, 200);
      assert.equal(closed.json.status, "closed");
      for (const account of [top, middle, bottom]) {
        const response = await sendEmail(server, account);
        assert.equal(response.status, 403);
        assert.equal(response.json.code, 10002);
      }
      const bottomRow = await request(server, "GET", `${API}/Accounts/${bottom.sid}.json`, {
        auth: server.admin,
      });
      assert.equal(bottomRow.json.status, "closed");
      const reopen = await request(server, "POST", `${API}/Accounts/${top.sid}.json`, {
        auth: server.admin,
        form: { Status: "active" },
      });
      assert.equal(reopen.status, 409);
      assert.equal(reopen.json.code, 10007);
    });
  });
}
