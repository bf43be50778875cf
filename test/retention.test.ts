import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Kysely } from "kysely";
import { formatDuration, parseDuration } from "../src/lifecycle/durations.js";
import { Purger } from "../src/lifecycle/purger.js";
import type { Database } from "../src/store/schema.js";
import type { MailStore } from "../src/store/types.js";
import { getMessage, waitForFinal } from "./helpers/delivery.js";
import { API, type Credentials, request, startMailroom, type TestServer } from "./helpers/mailroom.js";
import { openRawDb } from "./helpers/raw-db.js";
import { SmtpSink } from "./helpers/smtp-sink.js";
import { storeVariants } from "./helpers/stores.js";
import { onOneDay } from "./helpers/usage.js";
import { waitFor } from "./helpers/wait.js";

// Retention (issue 16) against a real server: a purge every second, accounts whose parent gives
// them retentions of a second or two; the server's own defaults stay long, so only those accounts'
// messages go.
const ATTACHMENT = Buffer.from("shared attachment bytes, the same in two messages");

test("durations: one whole number and one unit, shown in the largest unit that fits", () => {
  assert.equal(parseDuration("30d"), 30 * 86_400_000);
  assert.equal(parseDuration("12h"), 12 * 3_600_000);
  assert.equal(parseDuration("90m"), 90 * 60_000);
  assert.equal(parseDuration(" 90s "), 90_000);
  for (const bad of ["", "30", "1d12h", "1.5d", "-1d", "0s", "30D", "2y", "36501d"]) {
    assert.equal(parseDuration(bad), undefined, bad);
  }
  assert.equal(formatDuration(30 * 86_400_000), "30d");
  assert.equal(formatDuration(36 * 3_600_000), "36h");
  assert.equal(formatDuration(90_000), "90s");
});

test("a purge interval longer than a timer can wait does not make the purge run at once", async () => {
  let passes = 0;
  const store = {
    listAccounts: async () => {
      passes++;
      return [];
    },
  } as unknown as MailStore;
  const purger = new Purger(
    { store, logger: { info() {}, error() {} } },
    { defaults: { contentMs: 1000, metadataMs: 2000 }, intervalMs: 100 * 86_400_000 },
  );
  purger.start();
  await new Promise((resolve) => setTimeout(resolve, 300));
  await purger.stop();
  assert.equal(passes, 0, "no pass within the first 300 ms of a 100-day interval");
});

test("a pass gives back the space left free since the last pass first, then purges; `mailroom purge` also after", async () => {
  const calls: string[] = [];
  let free = 450;
  const store = {
    listAccounts: async () => [],
    giveSpaceBack: async (pages: number) => {
      const given = Math.min(pages, free);
      free -= given;
      calls.push(`vacuum ${given}`);
      return given;
    },
    purgeBatch: async (request: { kind: string }) => {
      calls.push(`purge ${request.kind}`);
      free += 300; // what the batch freed: left for the next writes, not given back now
      return { messages: 1, blobs: 0, busy: false };
    },
  } as unknown as MailStore;
  const purger = new Purger(
    { store, logger: { info() {}, error() {} } },
    { defaults: { contentMs: 1000, metadataMs: 2000 }, intervalMs: 3_600_000, vacuumPages: 200 },
  );
  const first = await purger.runPass(T0_NOW);
  assert.deepEqual(calls, ["vacuum 200", "vacuum 200", "vacuum 50", "purge content", "purge metadata"]);
  assert.equal(first.pagesFreed, 450);
  assert.equal(free, 600, "the pages this pass freed stay free until the next one");
  calls.length = 0;
  const byHand = await purger.runPass(T0_NOW, { giveBackAfter: true });
  assert.deepEqual(calls, [
    ...["vacuum 200", "vacuum 200", "vacuum 200", "vacuum 0"],
    ...["purge content", "purge metadata"],
    ...["vacuum 200", "vacuum 200", "vacuum 200", "vacuum 0"],
  ]);
  assert.equal(byHand.pagesFreed, 1200);
  assert.equal(free, 0);
});

const T0_NOW = 1_700_000_000_000;

for (const variant of await storeVariants()) {
  describe(`retention and purge (${variant.kind})`, { skip: variant.skip }, () => {
    let server: TestServer;
    let raw: Kysely<Database>;
    const messages = (account: Credentials) => `${API}/Accounts/${account.sid}/Email/Messages`;
    const setRetention = (target: Credentials, form: Record<string, string>, auth = server.admin) =>
      request(server, "POST", `${API}/Accounts/${target.sid}.json`, { auth, form });
    const send = async (account: Credentials, extra: Record<string, unknown> = {}) => {
      const sent = await request(server, "POST", `${messages(account)}.json`, {
        auth: account,
        json: {
          From: "sender@example.org",
          To: "reader@example.com",
          Subject: "Kept as metadata",
          Html: "<p>the body that goes</p>",
          Headers: { "X-Campaign": "spring" },
          Tags: { batch: "one" },
          ...extra,
        },
      });
      assert.equal(sent.status, 200, sent.text);
      await waitForFinal(server, account, sent.json.sid);
      return sent.json.sid as string;
    };
    const purged = (account: Credentials, sid: string) =>
      waitFor(`message ${sid} to lose its content`, async () => {
        const message = await getMessage(server, account, sid);
        return message.content_purged === true ? message : undefined;
      });
    const blobCount = async () =>
      Number(
        (
          await raw
            .selectFrom("attachment_blobs")
            .select((eb) => eb.fn.countAll<number | string>().as("n"))
            .executeTakeFirstOrThrow()
        ).n,
      );

    before(async () => {
      server = await startMailroom({
        store: variant.kind,
        env: {
          MAILROOM_CONTENT_RETENTION: "1h",
          MAILROOM_METADATA_RETENTION: "2h",
          MAILROOM_PURGE_INTERVAL: "1s",
        },
      });
      raw = openRawDb(server);
    });
    after(async () => {
      await raw?.destroy();
      await server?.close();
    });

    test("content goes after its retention: metadata stays, /Mime and attachments are 410", async () => {
      const short = await server.createAccount("short@example.org", server.admin.sid);
      const set = await setRetention(short, { ContentRetention: "2s" });
      assert.equal(set.status, 200, set.text);
      assert.equal(set.json.content_retention, "2s");
      assert.equal(set.json.metadata_retention, "2h", "metadata inherits the setting");

      const sid = await send(short, {
        Attachments: [{ Filename: "a.bin", Content: Buffer.from("only here").toString("base64") }],
      });
      const before = await getMessage(server, short, sid);
      assert.equal(before.content_purged, false);
      assert.equal(before.html, "<p>the body that goes</p>");
      assert.equal(
        (await request(server, "GET", `${messages(short)}/${sid}/Mime`, { auth: short })).status,
        200,
      );

      const message = await purged(short, sid);
      // JSON leaves null fields out.
      for (const gone of ["html", "text", "body", "headers", "attachments"]) {
        assert.equal(message[gone], undefined, `${gone} is null after the purge`);
      }
      assert.equal(message.subject, "Kept as metadata");
      assert.equal(message.to, "reader@example.com");
      assert.equal(message.status, "sent");
      assert.deepEqual(message.tags, { batch: "one" }, "tags are metadata");

      const mime = await request(server, "GET", `${messages(short)}/${sid}/Mime.json`, { auth: short });
      assert.equal(mime.status, 410, mime.text);
      assert.equal(mime.json.code, 17001);
      assert.match(mime.json.message, /purged on \d{4}-\d\d-\d\dT/);
      const attachment = await request(server, "GET", `${messages(short)}/${sid}/Attachments/0.json`, {
        auth: short,
      });
      assert.equal(attachment.status, 410);
      assert.equal(attachment.json.code, 17001);
      const mimeRows = await raw
        .selectFrom("email_mime")
        .select("message_sid")
        .where("message_sid", "=", sid)
        .execute();
      assert.deepEqual(mimeRows, [], "the composed MIME is deleted");
    });

    test("shared attachment bytes stay while another message uses them, and go with the last", async () => {
      const quick = await server.createAccount("quick@example.org", server.admin.sid);
      const slow = await server.createAccount("slow@example.org", server.admin.sid);
      assert.equal((await setRetention(quick, { ContentRetention: "1s" })).status, 200);
      const blobsBefore = await blobCount();
      const attachment = { Filename: "shared.bin", Content: ATTACHMENT.toString("base64") };
      const kept = await send(slow, { Attachments: [attachment] });
      const gone = await send(quick, { Attachments: [attachment] });
      assert.equal(await blobCount(), blobsBefore + 1, "the bytes are stored once");
      await purged(quick, gone);

      const download = await request(server, "GET", `${messages(slow)}/${kept}/Attachments/0`, {
        auth: slow,
      });
      assert.equal(download.status, 200, "the other message still has its attachment");
      assert.equal(download.text, ATTACHMENT.toString());
      assert.equal(await blobCount(), blobsBefore + 1);

      assert.equal((await setRetention(slow, { ContentRetention: "1s" })).status, 200);
      await purged(slow, kept);
      await waitFor(
        "the shared bytes to go with their last message",
        async () => (await blobCount()) === blobsBefore,
      );
    });

    test("metadata retention deletes the message (404); Usage Records keep counting it", async () => {
      const brief = await server.createAccount("brief@example.org", server.admin.sid);
      const set = await setRetention(brief, { ContentRetention: "1s", MetadataRetention: "2s" });
      assert.equal(set.status, 200, set.text);
      const sid = await send(brief);
      await onOneDay(async (today) => {
        await waitFor(`message ${sid} to be deleted`, async () => {
          const response = await request(server, "GET", `${messages(brief)}/${sid}.json`, { auth: brief });
          return response.status === 404;
        });
        for (const table of ["email_events", "email_attempts", "email_tags"] as const) {
          const left = await raw
            .selectFrom(table)
            .select("message_sid")
            .where("message_sid", "=", sid)
            .execute();
          assert.deepEqual(left, [], `${table} rows of the message are gone`);
        }
        const usage = await request(
          server,
          "GET",
          `${API}/Accounts/${brief.sid}/Usage/Records/Today.json?Category=email`,
          { auth: brief },
        );
        assert.equal(usage.status, 200, usage.text);
        assert.equal(usage.json[0]?.count, "1", `usage still counts it on ${today}`);
      });
    });

    test("a parent caps its sub-accounts' retention; an account cannot set its own", async () => {
      const parent = await server.createAccount("parent@example.org", server.admin.sid);
      assert.equal(
        (await setRetention(parent, { ContentRetention: "10m", MetadataRetention: "1h" })).status,
        200,
      );
      const created = await request(server, "POST", `${API}/Accounts.json`, {
        auth: parent,
        form: { EmailAddress: "child@example.org", Password: "a long password" },
      });
      assert.equal(created.status, 200, created.text);
      assert.equal(created.json.content_retention, "10m", "a new sub-account inherits its parent's");
      const child = { sid: created.json.sid as string, token: created.json.auth_token as string };

      const above = await setRetention(child, { ContentRetention: "1h" }, parent);
      assert.equal(above.status, 400);
      assert.equal(above.json.code, 17003);
      assert.match(above.json.message, /parent account's 10m/);
      const own = await setRetention(child, { ContentRetention: "1m" }, child);
      assert.equal(own.status, 403);
      assert.equal(own.json.code, 17004);
      const crossed = await setRetention(child, { ContentRetention: "5m", MetadataRetention: "2m" }, parent);
      assert.equal(crossed.status, 400);
      assert.equal(crossed.json.code, 17002);
      const bad = await setRetention(child, { ContentRetention: "30x" }, parent);
      assert.equal(bad.status, 400);
      assert.equal(bad.json.code, 17002);

      const ok = await setRetention(child, { ContentRetention: "5m" }, parent);
      assert.equal(ok.status, 200, ok.text);
      assert.equal(ok.json.content_retention, "5m");
      assert.equal(ok.json.metadata_retention, "1h");
      const seen = await request(server, "GET", `${API}/Accounts/${child.sid}.json`, { auth: child });
      assert.equal(seen.json.content_retention, "5m");

      // The parent shortens its own: the child's effective value follows.
      assert.equal((await setRetention(parent, { ContentRetention: "3m" })).status, 200);
      const capped = await request(server, "GET", `${API}/Accounts/${child.sid}.json`, { auth: child });
      assert.equal(capped.json.content_retention, "3m");
      const inherit = await setRetention(child, { ContentRetention: "" }, parent);
      assert.equal(inherit.json.content_retention, "3m");
    });
  });

  describe(`retention never purges what is not final (${variant.kind})`, { skip: variant.skip }, () => {
    let server: TestServer;
    let sink: SmtpSink;

    before(async () => {
      // The relay defers one recipient for good: its message stays queued, retried in an hour.
      sink = await SmtpSink.start({
        rules: {
          recipient: (address) => {
            if (address.startsWith("later@")) return { code: 451, message: "try later" };
            if (address.toLowerCase().startsWith("gone@"))
              return { code: 550, message: `no mailbox <${address}> here` };
            return undefined;
          },
        },
      });
      server = await startMailroom({
        store: variant.kind,
        env: {
          MAILROOM_SMTP_URL: sink.url,
          MAILROOM_RETRY_BASE_MS: "3600000",
          MAILROOM_RETRY_MAX_MS: "3600000",
          MAILROOM_CONTENT_RETENTION: "1s",
          MAILROOM_METADATA_RETENTION: "2s",
          MAILROOM_PURGE_INTERVAL: "1s",
        },
      });
    });
    after(async () => {
      await server?.close();
      await sink?.stop();
    });

    test("a queued message past the retention keeps its content and its row", async () => {
      const account = await server.createAccount("waiting@example.org", server.admin.sid);
      const send = (to: string) =>
        request(server, "POST", `${API}/Accounts/${account.sid}/Email/Messages.json`, {
          auth: account,
          form: { From: "a@example.org", To: to, Subject: "Hold", Body: "still needed" },
        });
      const queued = await send("later@example.com");
      assert.equal(queued.status, 200, queued.text);
      await waitFor(
        "the deferral",
        async () => (await getMessage(server, account, queued.json.sid)).num_attempts >= 1,
      );
      const delivered = await send("now@example.com");
      await waitForFinal(server, account, delivered.json.sid);
      // The delivered one is purged, then deleted: passes ran past the queued one's retention.
      await waitFor("the delivered message to be deleted", async () => {
        const response = await request(
          server,
          "GET",
          `${API}/Accounts/${account.sid}/Email/Messages/${delivered.json.sid}.json`,
          { auth: account },
        );
        return response.status === 404;
      });
      const passes = server.mailroom.purger.totals.passes;
      await waitFor("two more purge passes", () => server.mailroom.purger.totals.passes >= passes + 2);
      const message = await getMessage(server, account, queued.json.sid);
      assert.equal(message.status, "queued");
      assert.equal(message.content_purged, false);
      assert.equal(message.body, "still needed");
    });

    test("a scheduled message past the retention keeps its content and its row", async () => {
      const account = await server.createAccount("scheduled@example.org", server.admin.sid);
      const sendAt = new Date(Date.now() + 3_600_000).toISOString();
      const scheduled = await request(server, "POST", `${API}/Accounts/${account.sid}/Email/Messages.json`, {
        auth: account,
        form: {
          From: "a@example.org",
          To: "now@example.com",
          Subject: "Later",
          Body: "kept",
          SendAt: sendAt,
        },
      });
      assert.equal(scheduled.status, 200, scheduled.text);
      // Well past its 1 s content and 2 s metadata retention, with passes in between.
      const passes = server.mailroom.purger.totals.passes;
      await waitFor(
        "three more purge passes",
        () => server.mailroom.purger.totals.passes >= passes + 3,
        20_000,
      );
      const message = await getMessage(server, account, scheduled.json.sid);
      assert.equal(message.status, "scheduled");
      assert.equal(message.content_purged, false);
      assert.equal(message.body, "kept");
    });

    test("an erasure leaves a message not final yet as it is and counts it as pending", async () => {
      const account = await server.createAccount("pending@example.org", server.admin.sid);
      const queued = await request(server, "POST", `${API}/Accounts/${account.sid}/Email/Messages.json`, {
        auth: account,
        form: { From: "a@example.org", To: "later@example.com", Subject: "Hold", Body: "to be delivered" },
      });
      assert.equal(queued.status, 200, queued.text);
      await waitFor(
        "the deferral",
        async () => (await getMessage(server, account, queued.json.sid)).num_attempts >= 1,
      );
      const erased = await request(server, "POST", `${API}/Accounts/${account.sid}/Email/Erasures.json`, {
        auth: account,
        form: { Address: "later@example.com" },
      });
      assert.equal(erased.status, 200, erased.text);
      assert.equal(erased.json.messages_affected, 0);
      assert.equal(erased.json.messages_pending, 1);
      const message = await getMessage(server, account, queued.json.sid);
      assert.equal(message.to, "later@example.com", "mail already promised keeps its recipient");
      assert.equal(message.body, "to be delivered");
    });

    test("an erasure also rewrites the relay's replies that quote the address, in attempts, events and Notifications", async () => {
      const account = await server.createAccount("quoted@example.org", server.admin.sid);
      const base = `${API}/Accounts/${account.sid}`;
      const sent = await request(server, "POST", `${base}/Email/Messages.json`, {
        auth: account,
        form: { From: "a@example.org", To: "Gone@example.com", Subject: "Refused", Body: "x" },
      });
      assert.equal(sent.status, 200, sent.text);
      const failed = await waitForFinal(server, account, sent.json.sid);
      assert.equal(failed.status, "failed");
      const read = async (path: string) => (await request(server, "GET", path, { auth: account })).text;
      const history = async () =>
        [
          await read(`${base}/Email/Messages/${sent.json.sid}/Attempts.json`),
          await read(`${base}/Events.json?MessageSid=${sent.json.sid}`),
          await read(`${base}/Notifications.json`),
        ].join("\n");
      assert.match(await history(), /gone@example\.com/i, "the relay's reply quotes the address");
      const erased = await request(server, "POST", `${base}/Email/Erasures.json`, {
        auth: account,
        form: { Address: "gone@example.com" },
      });
      assert.equal(erased.json.messages_affected, 1, erased.text);
      const after = await history();
      assert.doesNotMatch(after, /gone@example\.com/i);
      assert.ok(after.includes(`${erased.json.address_hash}@erased.invalid`));
    });
  });
}
