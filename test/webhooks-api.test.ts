import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Webhook } from "standardwebhooks";
import { SECRET_KEY_FILE } from "../src/services/secret-key.js";
import { API, type Credentials, request, startMailroom, type TestServer } from "./helpers/mailroom.js";
import { openRawDb } from "./helpers/raw-db.js";
import { storeVariants } from "./helpers/stores.js";

const WEBHOOK_FIELDS = [
  "account_sid",
  "date_created",
  "date_updated",
  "enabled",
  "events",
  "sid",
  "uri",
  "url",
];
const SECRET = /^whsec_[A-Za-z0-9+/]{32}$/;

for (const variant of await storeVariants()) {
  describe(`webhooks resource (${variant.kind})`, { skip: variant.skip }, () => {
    let server: TestServer;
    let alice: Credentials;
    let bob: Credentials;
    const logLines: Array<Record<string, unknown>> = [];
    const hooks = (account: Credentials, rest = "") => `${API}/Accounts/${account.sid}/Webhooks${rest}`;
    const create = (account: Credentials, form: Record<string, string>, suffix = ".json") =>
      request(server, "POST", hooks(account, suffix), { auth: account, form });

    before(async () => {
      // Receivers in these tests are never called: allowing private addresses only spares DNS.
      server = await startMailroom({
        store: variant.kind,
        env: { MAILROOM_WEBHOOK_ALLOW_PRIVATE: "1", MAILROOM_MAX_WEBHOOKS: "5" },
        logLines,
      });
      alice = await server.createAccount("alice@example.org", server.admin.sid);
      bob = await server.createAccount("bob@example.org", server.admin.sid);
    });
    after(async () => {
      await server?.close();
    });

    test("create answers the webhook with its secret once; get and list never show it", async () => {
      const created = await create(alice, { Url: "https://receiver.example/hooks?x=1" });
      assert.equal(created.status, 200, created.text);
      const hook = created.json;
      assert.deepEqual(Object.keys(hook).sort(), [...WEBHOOK_FIELDS, "secret"].sort());
      assert.match(hook.sid, /^WH[0-9a-f]{32}$/);
      assert.equal(hook.account_sid, alice.sid);
      assert.equal(hook.url, "https://receiver.example/hooks?x=1");
      assert.equal(hook.events, "*");
      assert.equal(hook.enabled, true);
      assert.equal(hook.uri, `${hooks(alice)}/${hook.sid}.json`);
      assert.match(hook.secret, SECRET);
      // The Standard Webhooks library takes the secret as it is given.
      const signer = new Webhook(hook.secret);
      const body = '{"type":"email.sent"}';
      const at = new Date();
      const headers = {
        "webhook-id": "EV1",
        "webhook-timestamp": String(Math.floor(at.getTime() / 1000)),
        "webhook-signature": signer.sign("EV1", at, body),
      };
      assert.deepEqual(new Webhook(hook.secret).verify(body, headers), { type: "email.sent" });

      const got = await request(server, "GET", `${hooks(alice)}/${hook.sid}.json`, { auth: alice });
      assert.equal(got.status, 200);
      assert.deepEqual(Object.keys(got.json).sort(), WEBHOOK_FIELDS);
      assert.equal(got.text.includes(hook.secret.slice(6)), false);
      const listed = await request(server, "GET", hooks(alice, ".json"), { auth: alice });
      assert.equal(listed.status, 200);
      assert.ok(listed.json.webhooks.some((w: { sid: string }) => w.sid === hook.sid));
      assert.equal(listed.text.includes("secret"), false);

      // Stored sealed, never as given.
      const db = openRawDb(server);
      try {
        const row = await db
          .selectFrom("webhooks")
          .selectAll()
          .where("sid", "=", hook.sid)
          .executeTakeFirstOrThrow();
        assert.match(row.secret_sealed, /^v1:/);
        assert.equal(row.secret_sealed.includes(hook.secret.slice(6)), false);
      } finally {
        await db.destroy();
      }
      await request(server, "DELETE", `${hooks(alice)}/${hook.sid}`, { auth: alice });
    });

    test("XML is the default answer, with Restcomm's element names", async () => {
      const created = await create(alice, { Url: "https://receiver.example/xml", Enabled: "false" }, "");
      assert.equal(created.status, 200, created.text);
      assert.match(created.headers.get("content-type") ?? "", /xml/);
      assert.match(created.text, /^<RestcommResponse><Webhook><Sid>WH[0-9a-f]{32}<\/Sid>/);
      assert.match(created.text, /<Enabled>false<\/Enabled>/);
      assert.match(created.text, /<Events>\*<\/Events>/);
      assert.match(created.text, /<Secret>whsec_/);
      const sid = /<Sid>(WH[0-9a-f]{32})<\/Sid>/.exec(created.text)?.[1];
      const listed = await request(server, "GET", hooks(alice), { auth: alice });
      assert.match(listed.text, /<Webhooks [^>]*total="\d+"[^>]*><Webhook>/);
      assert.equal(listed.text.includes("<Secret>"), false);
      await request(server, "DELETE", `${hooks(alice)}/${sid}`, { auth: alice });
    });

    test("Events: types once each in a fixed order; * or empty for all; an unknown type is refused by name", async () => {
      const some = await create(alice, {
        Url: "https://receiver.example/some",
        Events: "email.failed, email.sent,email.failed",
      });
      assert.equal(some.status, 200, some.text);
      assert.equal(some.json.events, "email.sent,email.failed");
      const all = await request(server, "POST", hooks(alice, ".json"), {
        auth: alice,
        json: { Url: "https://receiver.example/all", Events: "*", Enabled: true },
      });
      assert.equal(all.status, 200, all.text);
      assert.equal(all.json.events, "*");
      const unknown = await create(alice, {
        Url: "https://receiver.example/x",
        Events: "email.sent,email.opened",
      });
      assert.equal(unknown.status, 400);
      assert.equal(unknown.json.code, 14003);
      assert.match(unknown.json.message, /"email\.opened"/);
      assert.match(unknown.json.message, /email\.accepted/);
      for (const sid of [some.json.sid, all.json.sid]) {
        await request(server, "DELETE", `${hooks(alice)}/${sid}`, { auth: alice });
      }
    });

    test("parameters: unknown ones refused (body and query), Url required, Enabled true or false", async () => {
      const unknownBody = await create(alice, { Url: "https://receiver.example/x", Secret: "mine" });
      assert.equal(unknownBody.status, 400);
      assert.equal(unknownBody.json.code, 20009);
      assert.match(unknownBody.json.message, /"Secret"/);
      const misspelt = await create(alice, { URL: "https://receiver.example/x" });
      assert.equal(misspelt.status, 400);
      assert.equal(misspelt.json.code, 14002, "Url missing comes first, as Restcomm's required check");
      const unknownQuery = await request(server, "GET", hooks(alice, ".json?Enabled=true"), { auth: alice });
      assert.equal(unknownQuery.status, 400);
      assert.equal(unknownQuery.json.code, 20009);
      const missing = await create(alice, {});
      assert.equal(missing.status, 400);
      assert.equal(missing.json.code, 14002);
      assert.equal(missing.json.message, "Url can not be null.");
      const enabled = await create(alice, { Url: "https://receiver.example/x", Enabled: "yes" });
      assert.equal(enabled.status, 400);
      assert.equal(enabled.json.code, 14004);
      const spaced = await create(alice, { Url: " https://receiver.example/x" });
      assert.equal(spaced.status, 400);
      assert.equal(spaced.json.code, 14400);
      const long = await create(alice, { Url: `https://receiver.example/${"a".repeat(2100)}` });
      assert.equal(long.status, 400);
      assert.equal(long.json.code, 14400);
      const scheme = await create(alice, { Url: "ftp://receiver.example/x" });
      assert.equal(scheme.status, 400);
      assert.equal(scheme.json.code, 14400);
    });

    test("update changes what is given and keeps the rest; an empty update changes nothing", async () => {
      const created = await create(alice, { Url: "https://receiver.example/a", Events: "email.sent" });
      const uri = `${hooks(alice)}/${created.json.sid}.json`;
      const url = await request(server, "POST", uri, {
        auth: alice,
        form: { Url: "https://receiver.example/b" },
      });
      assert.equal(url.status, 200, url.text);
      assert.equal(url.json.url, "https://receiver.example/b");
      assert.equal(url.json.events, "email.sent");
      assert.equal(url.json.enabled, true);
      assert.equal(url.json.secret, undefined);
      const off = await request(server, "POST", uri, { auth: alice, form: { Enabled: "false", Events: "" } });
      assert.equal(off.json.enabled, false);
      assert.equal(off.json.events, "*");
      assert.equal(off.json.url, "https://receiver.example/b");
      const empty = await request(server, "POST", uri, { auth: alice });
      assert.equal(empty.status, 200, empty.text);
      assert.deepEqual(empty.json, off.json);
      const bad = await request(server, "POST", uri, { auth: alice, form: { Events: "sent" } });
      assert.equal(bad.status, 400);
      assert.equal(bad.json.code, 14003);
      const unknown = await request(server, "POST", uri, { auth: alice, form: { Secret: "x" } });
      assert.equal(unknown.json.code, 20009);
      await request(server, "DELETE", uri, { auth: alice });
    });

    test("Enabled=true on a disabled webhook restarts its failure clock; on an enabled one it keeps it", async () => {
      const created = await create(alice, { Url: "https://receiver.example/clock" });
      const sid = created.json.sid;
      const uri = `${hooks(alice)}/${sid}.json`;
      const db = openRawDb(server);
      try {
        const failingSince = async () =>
          (
            await db
              .selectFrom("webhooks")
              .select("failing_since")
              .where("sid", "=", sid)
              .executeTakeFirstOrThrow()
          ).failing_since;
        await db
          .updateTable("webhooks")
          .set({ failing_since: 1_700_000_000_000 })
          .where("sid", "=", sid)
          .execute();
        await request(server, "POST", uri, { auth: alice, form: { Enabled: "true" } });
        assert.equal(Number(await failingSince()), 1_700_000_000_000, "still enabled: the clock runs on");
        // Disabled, as the sender does after days of failures.
        await db.updateTable("webhooks").set({ enabled: 0 }).where("sid", "=", sid).execute();
        const on = await request(server, "POST", uri, { auth: alice, form: { Enabled: "true" } });
        assert.equal(on.json.enabled, true);
        assert.equal(await failingSince(), null);
      } finally {
        await db.destroy();
      }
      await request(server, "DELETE", uri, { auth: alice });
    });

    test("rotating the secret answers a new one once; the old one is gone", async () => {
      const created = await create(alice, { Url: "https://receiver.example/rotate" });
      const sid = created.json.sid;
      const db = openRawDb(server);
      try {
        const sealed = async () =>
          (
            await db
              .selectFrom("webhooks")
              .select("secret_sealed")
              .where("sid", "=", sid)
              .executeTakeFirstOrThrow()
          ).secret_sealed;
        const before = await sealed();
        const rotated = await request(server, "POST", `${hooks(alice)}/${sid}/Secret.json`, { auth: alice });
        assert.equal(rotated.status, 200, rotated.text);
        assert.match(rotated.json.secret, SECRET);
        assert.notEqual(rotated.json.secret, created.json.secret);
        assert.equal(rotated.json.sid, sid);
        assert.notEqual(await sealed(), before);
        const got = await request(server, "GET", `${hooks(alice)}/${sid}.json`, { auth: alice });
        assert.equal(got.json.secret, undefined);
        const withBody = await request(server, "POST", `${hooks(alice)}/${sid}/Secret.json`, {
          auth: alice,
          form: { Secret: "whsec_chosen" },
        });
        assert.equal(withBody.status, 400);
        assert.equal(withBody.json.code, 20009);
      } finally {
        await db.destroy();
      }
      await request(server, "DELETE", `${hooks(alice)}/${sid}`, { auth: alice });
    });

    test("delete answers 204, then the webhook is gone (404), with its queued jobs", async () => {
      const created = await create(alice, { Url: "https://receiver.example/gone" });
      const sid = created.json.sid;
      const db = openRawDb(server);
      try {
        await db
          .insertInto("webhook_queue")
          .values({
            sid: `RP${"0".repeat(32)}`,
            account_sid: alice.sid,
            webhook_sid: sid,
            event_sid: `EV${"0".repeat(32)}`,
            message_sid: null,
            callback_url: null,
            attempts: 0,
            created_at: Date.now() + 3_600_000,
            due_at: Date.now() + 3_600_000,
            lease_owner: null,
            lease_expires_at: null,
          })
          .execute();
        const deleted = await request(server, "DELETE", `${hooks(alice)}/${sid}`, { auth: alice });
        assert.equal(deleted.status, 204);
        assert.equal(deleted.text, "");
        const jobs = await db
          .selectFrom("webhook_queue")
          .select("sid")
          .where("webhook_sid", "=", sid)
          .execute();
        assert.deepEqual(jobs, []);
      } finally {
        await db.destroy();
      }
      const got = await request(server, "GET", `${hooks(alice)}/${sid}.json`, { auth: alice });
      assert.equal(got.status, 404);
      assert.equal(got.json.code, 14001);
      const again = await request(server, "DELETE", `${hooks(alice)}/${sid}.json`, { auth: alice });
      assert.equal(again.status, 404);
      const notASid = await request(server, "GET", `${hooks(alice)}/nothing.json`, { auth: alice });
      assert.equal(notASid.status, 404);
      assert.equal(notASid.json.code, 14001);
    });

    test("paging: oldest first, Restcomm's fields; the account limit is a clear 403", async () => {
      const carol = await server.createAccount("carol@example.org", server.admin.sid);
      const sids: string[] = [];
      for (let i = 0; i < 5; i++) {
        const created = await create(carol, { Url: `https://receiver.example/${i}` });
        assert.equal(created.status, 200, created.text);
        sids.push(created.json.sid);
      }
      const sixth = await create(carol, { Url: "https://receiver.example/6" });
      assert.equal(sixth.status, 403);
      assert.equal(sixth.json.code, 14005);
      assert.match(sixth.json.message, /5 webhooks.*MAILROOM_MAX_WEBHOOKS/);
      const path = hooks(carol, ".json");
      const first = await request(server, "GET", `${path}?PageSize=2`, { auth: carol });
      assert.equal(first.json.total, 5);
      assert.equal(first.json.num_pages, 3);
      assert.deepEqual(
        first.json.webhooks.map((w: { sid: string }) => w.sid),
        sids.slice(0, 2),
      );
      assert.equal(first.json.next_page_uri, `${path}?Page=1&PageSize=2`);
      const last = await request(server, "GET", `${path}?Page=2&PageSize=2`, { auth: carol });
      assert.deepEqual(
        last.json.webhooks.map((w: { sid: string }) => w.sid),
        sids.slice(4),
      );
      assert.equal(last.json.next_page_uri, undefined);
      const badPage = await request(server, "GET", `${path}?PageSize=0`, { auth: carol });
      assert.equal(badPage.status, 400);
      // A deleted webhook frees its place.
      await request(server, "DELETE", `${hooks(carol)}/${sids[0]}`, { auth: carol });
      assert.equal((await create(carol, { Url: "https://receiver.example/again" })).status, 200);
    });

    test("another account's webhook is not found through its own URL, and refused through the owner's", async () => {
      const created = await create(alice, { Url: "https://receiver.example/alice" });
      const sid = created.json.sid;
      for (const [method, rest, form] of [
        ["GET", `/${sid}.json`, undefined],
        ["POST", `/${sid}.json`, { Enabled: "false" }],
        ["POST", `/${sid}/Secret.json`, undefined],
        ["DELETE", `/${sid}.json`, undefined],
        ["GET", `/${sid}/Deliveries.json`, undefined],
      ] as const) {
        const own = await request(server, method, hooks(bob, rest), { auth: bob, form });
        assert.equal(own.status, 404, `${method} ${rest}`);
        assert.equal(own.json.code, 14001);
        const theirs = await request(server, method, hooks(alice, rest), { auth: bob, form });
        assert.equal(theirs.status, 403, `${method} ${rest} in alice's URL`);
      }
      const listed = await request(server, "GET", hooks(bob, ".json"), { auth: bob });
      assert.equal(listed.json.total, 0);
      const still = await request(server, "GET", `${hooks(alice)}/${sid}.json`, { auth: alice });
      assert.equal(still.json.enabled, true);
      await request(server, "DELETE", `${hooks(alice)}/${sid}`, { auth: alice });
    });

    test("a sub-account's webhooks are its own; its parent manages them through its URL", async () => {
      const child = await server.createAccount("child@example.org", alice.sid);
      const made = await request(server, "POST", hooks(child, ".json"), {
        auth: alice,
        form: { Url: "https://receiver.example/child" },
      });
      assert.equal(made.status, 200, made.text);
      assert.equal(made.json.account_sid, child.sid);
      const parentList = await request(server, "GET", hooks(alice, ".json"), { auth: alice });
      assert.equal(
        parentList.json.webhooks.some((w: { sid: string }) => w.sid === made.json.sid),
        false,
      );
      const childList = await request(server, "GET", hooks(child, ".json"), { auth: child });
      assert.deepEqual(
        childList.json.webhooks.map((w: { sid: string }) => w.sid),
        [made.json.sid],
      );
      const up = await request(server, "GET", hooks(alice, ".json"), { auth: child });
      assert.equal(up.status, 403, "a child does not reach its parent's webhooks");
    });

    test("a suspended account's webhooks can be read, not changed, by its parent", async () => {
      const sleepy = await server.createAccount("sleepy@example.org", alice.sid);
      const made = await create(sleepy, { Url: "https://receiver.example/sleepy" });
      assert.equal(made.status, 200, made.text);
      const suspended = await request(server, "POST", `${API}/Accounts/${sleepy.sid}.json`, {
        auth: alice,
        form: { Status: "suspended" },
      });
      assert.equal(suspended.status, 200, suspended.text);
      const read = await request(server, "GET", hooks(sleepy, ".json"), { auth: alice });
      assert.equal(read.status, 200);
      assert.equal(read.json.total, 1);
      for (const [method, rest] of [
        ["POST", ".json"],
        ["POST", `/${made.json.sid}.json`],
        ["POST", `/${made.json.sid}/Secret.json`],
        ["DELETE", `/${made.json.sid}.json`],
      ] as const) {
        const refused = await request(server, method, hooks(sleepy, rest), {
          auth: alice,
          form: rest === ".json" ? { Url: "https://receiver.example/x" } : undefined,
        });
        assert.equal(refused.status, 403, `${method} ${rest}`);
        assert.equal(refused.json.code, 10002);
      }
    });

    test("no secret reaches the log: neither webhook secrets nor the installation's key", async () => {
      const created = await create(alice, { Url: "https://receiver.example/logged" });
      const rotated = await request(server, "POST", `${hooks(alice)}/${created.json.sid}/Secret.json`, {
        auth: alice,
      });
      const key = (await readFile(join(server.dataDir, SECRET_KEY_FILE), "utf8")).trim();
      const log = JSON.stringify(logLines);
      assert.ok(logLines.length > 0, "the server logged its requests");
      for (const secret of [created.json.secret, rotated.json.secret]) {
        assert.equal(log.includes(secret.slice(6)), false);
      }
      assert.equal(log.includes(key), false);
    });
  });

  describe(`webhook URLs are checked at creation and update (${variant.kind})`, {
    skip: variant.skip,
  }, () => {
    let server: TestServer;
    let account: Credentials;
    const create = (Url: string) =>
      request(server, "POST", `${API}/Accounts/${account.sid}/Webhooks.json`, {
        auth: account,
        form: { Url },
      });

    before(async () => {
      // Off explicitly: the default of test servers may allow private receivers.
      server = await startMailroom({ store: variant.kind, env: { MAILROOM_WEBHOOK_ALLOW_PRIVATE: "0" } });
      account = await server.createAccount("ssrf@example.org", server.admin.sid);
    });
    after(async () => {
      await server?.close();
    });

    test("loopback, private, link-local and metadata addresses are refused unless MAILROOM_WEBHOOK_ALLOW_PRIVATE=1", async () => {
      for (const url of [
        "http://127.0.0.1/hook",
        "http://localhost:8080/hook",
        "http://[::1]/hook",
        "http://10.0.0.8/hook",
        "http://192.168.1.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:127.0.0.1]/hook",
      ]) {
        const refused = await create(url);
        assert.equal(refused.status, 400, url);
        assert.equal(refused.json.code, 14402, `${url}: ${refused.json.message}`);
        assert.match(refused.json.message, /MAILROOM_WEBHOOK_ALLOW_PRIVATE/);
      }
      const metadata = await create("http://169.254.169.254/");
      assert.match(metadata.json.message, /metadata/);
      const listed = await request(server, "GET", `${API}/Accounts/${account.sid}/Webhooks.json`, {
        auth: account,
      });
      assert.equal(listed.json.total, 0, "nothing was created");
    });

    test("a host that does not resolve is refused; so are credentials in the URL", async () => {
      const unresolvable = await create("https://no-such-host.invalid/hook");
      assert.equal(unresolvable.status, 400);
      assert.equal(unresolvable.json.code, 14403);
      const credentials = await create("https://user:pass@receiver.example/hook");
      assert.equal(credentials.status, 400);
      assert.equal(credentials.json.code, 14401);
    });

    test("an update to a refused address is refused and changes nothing", async () => {
      const db = openRawDb(server);
      const sid = `WH${Date.now().toString(16).padStart(12, "0")}${"1".repeat(20)}`;
      try {
        // Created around the check (a public receiver cannot be reached from the tests).
        await db
          .insertInto("webhooks")
          .values({
            sid,
            account_sid: account.sid,
            url: "https://public.example/hook",
            events: null,
            enabled: 1,
            secret_sealed: "v1:unused",
            failing_since: null,
            date_created: Date.now(),
            date_updated: Date.now(),
          })
          .execute();
      } finally {
        await db.destroy();
      }
      const uri = `${API}/Accounts/${account.sid}/Webhooks/${sid}.json`;
      const refused = await request(server, "POST", uri, {
        auth: account,
        form: { Url: "http://127.0.0.1:9/x" },
      });
      assert.equal(refused.status, 400);
      assert.equal(refused.json.code, 14402);
      const got = await request(server, "GET", uri, { auth: account });
      assert.equal(got.json.url, "https://public.example/hook");
    });
  });
}
