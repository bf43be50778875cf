import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { getAttempts, getMessage, waitForFinal } from "./helpers/delivery.js";
import { API, type Credentials, request, startMailroom, type TestServer } from "./helpers/mailroom.js";
import { openRawDb } from "./helpers/raw-db.js";
import { storeVariants } from "./helpers/stores.js";

// POST …/Email/Erasures (issue 16): one address out of a lineage's messages, and nowhere else.
const PERSON = "person@example.com";

for (const variant of await storeVariants()) {
  describe(`erasure (${variant.kind})`, { skip: variant.skip }, () => {
    let server: TestServer;
    let tenant: Credentials;
    let sub: Credentials;
    let other: Credentials;
    const messages = (account: Credentials) => `${API}/Accounts/${account.sid}/Email/Messages`;
    const erase = (account: Credentials, form: Record<string, string>, auth = account) =>
      request(server, "POST", `${API}/Accounts/${account.sid}/Email/Erasures.json`, { auth, form });
    const send = async (account: Credentials, fields: Record<string, string>) => {
      const sent = await request(server, "POST", `${messages(account)}.json`, {
        auth: account,
        form: {
          From: "shop@example.org",
          Subject: "Your order",
          Html: "<p>Dear Person, your order</p>",
          ...fields,
        },
      });
      assert.equal(sent.status, 200, sent.text);
      await waitForFinal(server, account, sent.json.sid);
      return sent.json.sid as string;
    };

    before(async () => {
      server = await startMailroom({ store: variant.kind });
      tenant = await server.createAccount("tenant@example.org", server.admin.sid);
      sub = await server.createAccount("tenant-sub@example.org", tenant.sid);
      other = await server.createAccount("other@example.org", server.admin.sid);
    });
    after(() => server?.close());

    test("the address and the content go from every message of the lineage, and nowhere else", async () => {
      const toPerson = await send(tenant, { To: `"Per Son" <Person@Example.com>`, CC: "boss@example.org" });
      const bccPerson = await send(sub, { To: "team@example.org", BCC: "PERSON@example.com" });
      const replyToPerson = await send(sub, { To: "team@example.org", ReplyTo: PERSON });
      const unrelated = await send(tenant, { To: "someone@example.net" });
      const otherTenant = await send(other, { To: PERSON });

      const erased = await erase(tenant, { Address: "  PERSON@example.COM " });
      assert.equal(erased.status, 200, erased.text);
      assert.match(erased.json.sid, /^ER[0-9a-f]{32}$/);
      assert.match(erased.json.address_hash, /^[0-9a-f]{32}$/);
      assert.equal(erased.json.messages_affected, 3);
      assert.equal(erased.json.messages_pending, 0);
      const replacement = `${erased.json.address_hash}@erased.invalid`;

      const first = await getMessage(server, tenant, toPerson);
      assert.equal(first.to, replacement, "the display name goes with the address");
      assert.equal(first.cc, "boss@example.org", "other addresses stay");
      assert.equal(first.content_purged, true);
      assert.equal(first.html, undefined);
      assert.equal(first.subject, "Your order");
      assert.doesNotMatch(JSON.stringify(first), /person@example\.com/i);
      const attempts = await getAttempts(server, tenant, toPerson);
      assert.doesNotMatch(JSON.stringify(attempts), /person@example\.com/i);
      const events = await request(
        server,
        "GET",
        `${API}/Accounts/${tenant.sid}/Events.json?MessageSid=${toPerson}`,
        {
          auth: tenant,
        },
      );
      assert.equal(events.status, 200, events.text);
      assert.doesNotMatch(events.text, /person@example\.com/i);
      assert.ok(
        events.json.events.some((e: { type: string }) => e.type === "email.erased"),
        "the erasure is an event of the message",
      );
      const mime = await request(server, "GET", `${messages(tenant)}/${toPerson}/Mime.json`, {
        auth: tenant,
      });
      assert.equal(mime.status, 410);
      assert.equal(mime.json.code, 17001);

      const bcc = await getMessage(server, sub, bccPerson);
      assert.equal(bcc.bcc, replacement);
      assert.equal(bcc.content_purged, true);
      const replyTo = await getMessage(server, sub, replyToPerson);
      assert.equal(replyTo.reply_to, replacement);

      const untouched = await getMessage(server, tenant, unrelated);
      assert.equal(untouched.content_purged, false);
      assert.equal(untouched.html, "<p>Dear Person, your order</p>");
      const elsewhere = await getMessage(server, other, otherTenant);
      assert.equal(elsewhere.to, PERSON, "another tenant's message to the same address is untouched");
      assert.equal(elsewhere.content_purged, false);

      const notifications = await request(server, "GET", `${API}/Accounts/${tenant.sid}/Notifications.json`, {
        auth: tenant,
      });
      const notice = notifications.json.notifications.find(
        (n: { error_code: number }) => n.error_code === 17020,
      );
      assert.ok(notice, "the erasure is recorded as a Notification");
      assert.match(notice.message_text, new RegExp(erased.json.address_hash));
      assert.doesNotMatch(notice.message_text, /person@example\.com/i);

      // The same address hashes the same way: counts still match it, and nothing is left to erase.
      const again = await erase(tenant, { Address: PERSON });
      assert.equal(again.json.address_hash, erased.json.address_hash);
      assert.equal(again.json.messages_affected, 0);
    });

    test("an answer kept for an Idempotency-Key names the replacement after an erasure", async () => {
      const keyed = (headers: Record<string, string>) =>
        request(server, "POST", `${messages(other)}.json`, {
          auth: other,
          form: { From: "shop@example.org", To: "keyed@example.com", Subject: "Keyed", Body: "b" },
          headers,
        });
      const first = await keyed({ "Idempotency-Key": "erase-me" });
      assert.equal(first.status, 200, first.text);
      await waitForFinal(server, other, first.json.sid);
      const erased = await erase(other, { Address: "keyed@example.com" });
      assert.equal(erased.json.messages_affected, 1);
      const replay = await keyed({ "Idempotency-Key": "erase-me" });
      assert.equal(replay.status, 200);
      assert.equal(replay.headers.get("idempotent-replayed"), "true");
      assert.equal(replay.json.sid, first.json.sid);
      assert.doesNotMatch(replay.text, /keyed@example\.com/i);
      assert.equal(replay.json.to, `${erased.json.address_hash}@erased.invalid`);
    });

    test("an address stored JSON-escaped (a quoted local part, from before today's rules) is erased everywhere", async () => {
      // Messages stored before the strict address reader (migration 0002 read them with nodemailer's
      // lenient one) may hold a quoted local part; `"` and `\\` are escaped in every JSON text.
      const quoted = `"Zed \\"Quux\\""@example.com`;
      const sid = await send(tenant, { To: "stand-in@example.com", CC: "boss@example.org" });
      const raw = openRawDb(server);
      try {
        const asJson = (text: string) => JSON.stringify(text).slice(1, -1);
        const message = await raw
          .selectFrom("email_messages")
          .select("content")
          .where("sid", "=", sid)
          .executeTakeFirstOrThrow();
        await raw
          .updateTable("email_messages")
          .set({
            content: (message.content ?? "").replace("stand-in@example.com", asJson(quoted)),
            to_addresses: quoted,
          })
          .where("sid", "=", sid)
          .execute();
        const attempt = await raw
          .selectFrom("email_attempts")
          .select(["sid", "recipients"])
          .where("message_sid", "=", sid)
          .executeTakeFirstOrThrow();
        assert.match(attempt.recipients ?? "", /stand-in@example\.com/);
        await raw
          .updateTable("email_attempts")
          .set({ recipients: (attempt.recipients ?? "").replaceAll("stand-in@example.com", asJson(quoted)) })
          .where("sid", "=", attempt.sid)
          .execute();
        await raw
          .updateTable("email_events")
          .set({ recipient: quoted })
          .where("message_sid", "=", sid)
          .where("recipient", "=", "stand-in@example.com")
          .execute();
        assert.equal((await getMessage(server, tenant, sid)).to, quoted, "the stored address reads back");

        const erased = await erase(tenant, { Address: quoted.toUpperCase() });
        assert.equal(erased.status, 200, erased.text);
        assert.equal(erased.json.messages_affected, 1);
        const replacement = `${erased.json.address_hash}@erased.invalid`;
        const after = await getMessage(server, tenant, sid);
        assert.equal(after.to, replacement);
        assert.equal(after.cc, "boss@example.org");
        assert.equal(after.content_purged, true);
        const left = [
          ...(await raw.selectFrom("email_messages").selectAll().where("sid", "=", sid).execute()),
          ...(await raw.selectFrom("email_attempts").selectAll().where("message_sid", "=", sid).execute()),
          ...(await raw.selectFrom("email_events").selectAll().where("message_sid", "=", sid).execute()),
        ];
        assert.doesNotMatch(JSON.stringify(left), /quux/i, "no spelling of the address is left");
        assert.match(JSON.stringify(left), new RegExp(erased.json.address_hash));
      } finally {
        await raw.destroy();
      }
    });

    test("an answer kept in XML names the replacement too (an address with & and ')", async () => {
      const address = "o'neil&co@example.com";
      const keyed = () =>
        request(server, "POST", messages(other), {
          auth: other,
          form: { From: "shop@example.org", To: address, Subject: "Keyed", Body: "b" },
          headers: { "Idempotency-Key": "erase-me-xml" },
        });
      const first = await keyed();
      assert.equal(first.status, 200, first.text);
      assert.match(first.text, /o&apos;neil&amp;co@example\.com/, "XML escapes the address");
      const sid = /<Sid>(EM[0-9a-f]{32})<\/Sid>/.exec(first.text)?.[1] ?? "";
      await waitForFinal(server, other, sid);
      const erased = await erase(other, { Address: address });
      assert.equal(erased.json.messages_affected, 1);
      const replay = await keyed();
      assert.equal(replay.headers.get("idempotent-replayed"), "true");
      assert.doesNotMatch(replay.text, /neil/i);
      assert.match(replay.text, new RegExp(`${erased.json.address_hash}@erased\\.invalid`));
    });

    test("only the account, an ancestor or an Administrator may erase; Address is checked", async () => {
      const fromSub = await erase(tenant, { Address: PERSON }, sub);
      assert.equal(fromSub.status, 403, "a sub-account cannot erase its parent's messages");
      const byAdmin = await erase(other, { Address: "nobody@example.com" }, server.admin);
      assert.equal(byAdmin.status, 200, byAdmin.text);
      const missing = await erase(tenant, {});
      assert.equal(missing.status, 400);
      assert.equal(missing.json.code, 17010);
      for (const bad of ["not an address", "Per Son <p@example.com>", "a@example.com, b@example.com"]) {
        const refused = await erase(tenant, { Address: bad });
        assert.equal(refused.status, 400, bad);
        assert.equal(refused.json.code, 17011, bad);
      }
      const unknown = await erase(tenant, { Address: PERSON, Other: "x" });
      assert.equal(unknown.status, 400, "an unknown parameter is refused");
    });

    test("the Notification code has its line in docs/errors.md", async () => {
      const doc = await readFile(fileURLToPath(new URL("../../docs/errors.md", import.meta.url)), "utf8");
      assert.ok(doc.includes('| <a id="17020"></a>17020 | — |'));
    });
  });
}
