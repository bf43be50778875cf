import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { runCli } from "./helpers/cli.js";
import {
  API,
  type ApiResponse,
  type Credentials,
  request,
  sendEmail,
  startMailroom,
  startPeer,
  type TestServer,
} from "./helpers/mailroom.js";
import { storeVariants } from "./helpers/stores.js";

/**
 * Closing an account while sub-accounts are being created below it: every child ends closed, however
 * the creates and the close interleave, in one process or several (issue 12, item 1).
 */
for (const variant of await storeVariants()) {
  describe(`closing races with sub-account creation (${variant.kind})`, { skip: variant.skip }, () => {
    let server: TestServer;
    let parent: Credentials;
    before(async () => {
      server = await startMailroom({ store: variant.kind });
      parent = await server.createAccount("race-parent@example.org", server.admin.sid);
    });
    after(async () => {
      await server?.close();
    });

    const createChild = (as: Credentials, email: string, on: { url: string } = server) =>
      request(on, "POST", `${API}/Accounts.json`, {
        auth: as,
        form: { EmailAddress: email, Password: "long enough" },
      });

    /** Every child of `sid` is closed and none of the ones created can send. */
    async function assertAllClosed(sid: string, created: Array<{ email: string; response: ApiResponse }>) {
      const children = await server.mailroom.store.listSubAccounts(sid);
      const active = children.filter((child) => child.status !== "closed");
      assert.deepEqual(
        active.map((child) => `${child.email_address}: ${child.status}`),
        [],
        `of ${children.length} children, these outlived the close`,
      );
      for (const { response } of created.filter(({ response }) => response.status === 200)) {
        const sent = await sendEmail(server, { sid: response.json.sid, token: response.json.auth_token });
        assert.equal(sent.status, 403, `child ${response.json.sid} must not send`);
      }
    }

    test("ten clients creating in a loop while the parent closes: every child ends closed", async () => {
      for (let round = 0; round < 3; round++) {
        const closing = await server.createAccount(`race-${round}@example.org`, parent.sid);
        const created: Array<{ email: string; response: ApiResponse }> = [];
        let closed = false;
        let n = 0;
        const client = async () => {
          while (!closed) {
            const email = `race-${round}-${n++}@example.org`;
            created.push({ email, response: await createChild(closing, email) });
          }
        };
        const clients = Array.from({ length: 10 }, client);
        // The close lands in the middle of the creates, once they are well under way.
        while (created.length < 10) await new Promise((resolve) => setTimeout(resolve, 5));
        const close = await request(server, "POST", `${API}/Accounts/${closing.sid}.json`, {
          auth: parent,
          form: { Status: "closed" },
        });
        closed = true;
        await Promise.all(clients);
        assert.equal(close.status, 200, close.text);
        for (const { email, response } of created) {
          assert.ok([200, 403].includes(response.status), `${email}: ${response.status} ${response.text}`);
          if (response.status === 403) assert.equal(response.json.code, 10002);
        }
        await assertAllClosed(closing.sid, created);
      }
    });

    test("another process closes the parent: creates that still find it active in the auth cache are refused", async () => {
      const closing = await server.createAccount("race-cli@example.org", parent.sid);
      const created: Array<{ email: string; response: ApiResponse }> = [];
      let done = false;
      let stopAt = Number.POSITIVE_INFINITY;
      // Creates one after another, for the whole time the CLI runs and a little longer than the
      // auth cache lives: some of them pass authentication on the account as read before the close.
      const creating = (async () => {
        for (let i = 0; !done || Date.now() < stopAt; i++) {
          const email = `race-cli-${i}@example.org`;
          created.push({ email, response: await createChild(closing, email) });
        }
      })();
      const cli = await runCli(["accounts", "close", closing.sid], {
        MAILROOM_DATA_DIR: server.dataDir,
        ...(server.databaseUrl ? { MAILROOM_DATABASE_URL: server.databaseUrl } : {}),
      });
      stopAt = Date.now() + 1500;
      done = true;
      await creating;
      assert.equal(cli.code, 0, cli.stderr);
      assert.equal(JSON.parse(cli.stdout).status, "closed");
      assert.ok(
        created.some(({ response }) => response.status === 403),
        "creates after the close are refused",
      );
      await assertAllClosed(closing.sid, created);
    });

    test("two servers on one database: a create on one right after a close on the other is refused", {
      skip:
        variant.kind === "sqlite"
          ? "one server per SQLite file; the CLI test above is the second process"
          : false,
    }, async () => {
      const other = await startPeer(server);
      try {
        for (let round = 0; round < 3; round++) {
          const closing = await server.createAccount(`race-two-${round}@example.org`, parent.sid);
          // The first server reads the account now: for the next second it authenticates from that.
          const warm = await request(server, "GET", `${API}/Accounts.json`, { auth: closing });
          assert.equal(warm.status, 200);
          const closed = await request(other, "POST", `${API}/Accounts/${closing.sid}.json`, {
            auth: parent,
            form: { Status: "closed" },
          });
          assert.equal(closed.status, 200);
          const email = `race-two-${round}-child@example.org`;
          const response = await createChild(closing, email);
          assert.equal(response.status, 403, response.text);
          await assertAllClosed(closing.sid, [{ email, response }]);
        }
      } finally {
        await other.close();
      }
    });
  });
}
