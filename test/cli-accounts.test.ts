import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { runCli } from "./helpers/cli.js";
import { API, request, sendEmail, startMailroom, type TestServer } from "./helpers/mailroom.js";
import { storeVariants } from "./helpers/stores.js";
import { waitFor } from "./helpers/wait.js";

/** The operator's `mailroom accounts` commands, run as separate processes beside a running server. */
for (const variant of await storeVariants()) {
  describe(`mailroom accounts list|update|suspend|close|rotate-token (${variant.kind})`, {
    skip: variant.skip,
  }, () => {
    let server: TestServer;
    let env: Record<string, string>;
    before(async () => {
      server = await startMailroom({ store: variant.kind });
      env = {
        MAILROOM_DATA_DIR: server.dataDir,
        ...(server.databaseUrl ? { MAILROOM_DATABASE_URL: server.databaseUrl } : {}),
      };
    });
    after(async () => {
      await server?.close();
    });

    const cli = async (...args: string[]) => {
      const result = await runCli(["accounts", ...args], env);
      return { ...result, json: result.code === 0 ? JSON.parse(result.stdout) : undefined };
    };
    const sendsWith = (status: number, credentials: { sid: string; token: string }) =>
      waitFor(
        `a send to answer ${status}`,
        async () => (await sendEmail(server, credentials)).status === status,
      );

    test("a leaked top-level token: rotate-token prints a new one once, the old one stops working", async () => {
      const root = await server.createAccount("leaked-root@example.org");
      assert.equal((await sendEmail(server, root)).status, 200);
      const rotated = await cli("rotate-token", root.sid);
      assert.equal(rotated.code, 0, rotated.stderr);
      assert.equal(rotated.json.sid, root.sid);
      assert.match(rotated.json.auth_token, /^[0-9a-f]{32}$/);
      await sendsWith(401, root);
      assert.equal((await sendEmail(server, { sid: root.sid, token: rotated.json.auth_token })).status, 200);
      const listed = await cli("list");
      assert.ok(listed.json.every((account: { auth_token?: string }) => account.auth_token === undefined));
    });

    test("suspend stops an account and its sub-accounts; update --status active restores them", async () => {
      const root = await server.createAccount("suspend-root@example.org");
      const child = await server.createAccount("suspend-child@example.org", root.sid);
      const suspended = await cli("suspend", "Suspend-Root@example.org");
      assert.equal(suspended.code, 0, suspended.stderr);
      assert.equal(suspended.json.status, "suspended");
      assert.equal(suspended.json.auth_token, undefined);
      await sendsWith(403, root);
      const refused = await sendEmail(server, child);
      assert.equal(refused.status, 403);
      assert.equal(refused.json.code, 10013);
      const restored = await cli("update", root.sid, "--status", "active", "--friendly-name", "Back");
      assert.equal(restored.code, 0, restored.stderr);
      assert.equal(restored.json.friendly_name, "Back");
      await sendsWith(200, child);
    });

    test("close is final and cascades; a closed account cannot be changed", async () => {
      const root = await server.createAccount("close-root@example.org");
      const child = await server.createAccount("close-child@example.org", root.sid);
      const closed = await cli("close", root.sid);
      assert.equal(closed.code, 0, closed.stderr);
      assert.equal(closed.json.status, "closed");
      const children = await cli("list", "--parent", root.sid);
      assert.deepEqual(
        children.json.map((account: { sid: string; status: string }) => [account.sid, account.status]),
        [[child.sid, "closed"]],
      );
      await sendsWith(403, child);
      const again = await cli("update", root.sid, "--status", "active");
      assert.equal(again.code, 2);
      assert.match(again.stderr, /closed; a closed account cannot be changed/);
      const below = await cli("create", "--email", "below-closed@example.org", "--parent", root.sid);
      assert.equal(below.code, 2);
      assert.match(below.stderr, /is closed; nothing can be created below it/);
    });

    test("update --role Administrator lets an account manage every account through the API", async () => {
      const ops = await server.createAccount("ops@example.org");
      const tenant = await server.createAccount("managed-tenant@example.org");
      assert.equal(
        (await request(server, "GET", `${API}/Accounts/${tenant.sid}.json`, { auth: ops })).status,
        403,
      );
      const promoted = await cli("update", ops.sid, "--role", "Administrator");
      assert.equal(promoted.code, 0, promoted.stderr);
      assert.equal(promoted.json.role, "Administrator");
      await waitFor("the promotion to apply", async () => {
        const read = await request(server, "GET", `${API}/Accounts/${tenant.sid}.json`, { auth: ops });
        return read.status === 200;
      });
    });

    test("unknown accounts and bad values are refused with a clear message", async () => {
      const missing = await cli("suspend", `AC${"0".repeat(32)}`);
      assert.equal(missing.code, 2);
      assert.match(missing.stderr, /no such account/);
      const root = await server.createAccount("bad-values@example.org");
      const status = await cli("update", root.sid, "--status", "paused");
      assert.equal(status.code, 2);
      assert.match(status.stderr, /Status "paused" is not valid/);
      const password = await cli("update", root.sid, "--password", "x".repeat(1025));
      assert.equal(password.code, 2);
      assert.match(password.stderr, /longer than 1024 bytes/);
      const help = await runCli(["accounts", "--help"]);
      for (const command of ["list", "update", "suspend", "close", "rotate-token"]) {
        assert.match(help.stdout, new RegExp(`\\b${command}\\b`));
      }
    });
  });
}
