import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { NewEmailMessage } from "../src/store/types.js";
import { getMessage } from "./helpers/delivery.js";
import {
  API,
  type ApiResponse,
  type Credentials,
  request,
  sendEmail,
  startMailroom,
  type TestServer,
} from "./helpers/mailroom.js";
import { SmtpSink } from "./helpers/smtp-sink.js";
import { emailRow, insertAccount } from "./helpers/store-rows.js";
import { openTestStore, storeVariants } from "./helpers/stores.js";
import { waitFor } from "./helpers/wait.js";

const message = (i: number, fields: Record<string, unknown> = {}) => ({
  From: "jane.doe@yourcompany.com",
  To: `rcpt${i}@example.com`,
  Subject: `batch ${i}`,
  Body: `message ${i}`,
  ...fields,
});

function sendBatch(
  server: { url: string },
  auth: Credentials,
  body: unknown,
  options: { suffix?: string; headers?: Record<string, string> } = {},
): Promise<ApiResponse> {
  return request(
    server,
    "POST",
    `${API}/Accounts/${auth.sid}/Email/Messages/Batch${options.suffix ?? ".json"}`,
    {
      auth,
      json: body,
      headers: options.headers,
    },
  );
}

async function messageCount(server: { url: string }, auth: Credentials): Promise<number> {
  const list = await request(server, "GET", `${API}/Accounts/${auth.sid}/Email/Messages.json`, { auth });
  return list.json.total;
}

for (const variant of await storeVariants()) {
  describe(`batch send (${variant.kind})`, { skip: variant.skip }, () => {
    let sink: SmtpSink;
    let server: TestServer;

    before(async () => {
      sink = await SmtpSink.start();
      server = await startMailroom({ store: variant.kind, env: { MAILROOM_SMTP_URL: sink.url } });
    });
    after(async () => {
      await server?.close();
      await sink?.stop();
    });

    test("a batch of 500: 500 SIDs in request order, each delivered once", async () => {
      const auth = await server.createAccount("batch500@test.example");
      const items = Array.from({ length: 500 }, (_, i) => message(i));
      const response = await sendBatch(server, auth, items);
      assert.equal(response.status, 200, response.text.slice(0, 500));
      const answered = response.json.messages as Array<{ sid: string; to: string; message_id: string }>;
      assert.equal(answered.length, 500);
      assert.equal(new Set(answered.map((m) => m.sid)).size, 500);
      assert.deepEqual(
        answered.map((m) => m.to),
        items.map((item) => item.To),
        "in request order",
      );
      await waitFor(
        "all 500 at the relay",
        () => answered.every((m) => sink.count(m.message_id) >= 1),
        120_000,
      );
      assert.ok(
        answered.every((m) => sink.count(m.message_id) === 1),
        "each delivered once",
      );
      assert.equal(await messageCount(server, auth), 500);
    });

    test("an item is answered as a single send answers it", async () => {
      const auth = await server.createAccount("batch-shape@test.example");
      const single = await sendEmail(server, auth, {
        To: "rcpt0@example.com",
        Subject: "batch 0",
        Body: "message 0",
      });
      const batch = await sendBatch(server, auth, [message(0)]);
      assert.equal(batch.status, 200, batch.text);
      const item = batch.json.messages[0];
      assert.deepEqual(Object.keys(item), Object.keys(single.json));
      assert.equal(item.status, "queued");
      const stored = await getMessage(server, auth, item.sid);
      assert.equal(stored.subject, "batch 0");
    });

    test("invalid items get their own errors; the valid ones are sent", async () => {
      const auth = await server.createAccount("batch-mixed@test.example");
      const items = [
        message(0),
        { To: "a@example.com", Subject: "no sender", Body: "x" },
        message(2, { Cc: "c@example.com" }),
        "not an object",
        message(4, { From: "not an address" }),
        message(5, { To: 5 }),
        message(6),
        message(7, { Attachments: [{ Filename: "a.txt" }] }),
      ];
      const response = await sendBatch(server, auth, items);
      assert.equal(response.status, 200, response.text);
      const answered = response.json.messages;
      assert.equal(answered.length, items.length);
      const codeOf = (i: number) => answered[i].code;
      assert.match(answered[0].sid, /^EM/);
      assert.equal(codeOf(1), 13001);
      assert.equal(answered[1].message, "From can not be null.");
      assert.equal(answered[1].status, 400);
      assert.equal(answered[1].more_info, "/restcomm/errors/13001.html");
      assert.equal(codeOf(2), 20009, "an unknown parameter is that item's error");
      assert.match(answered[2].message, /Unknown parameter "Cc"\. Did you mean "CC"\?/);
      assert.equal(codeOf(3), 15014);
      assert.equal(codeOf(4), 13010);
      assert.equal(codeOf(5), 20010);
      assert.match(answered[5].message, /^To must be text or a list of text/);
      assert.match(answered[6].sid, /^EM/);
      assert.equal(codeOf(7), 20010);
      assert.equal(answered[7].message, "Attachments[0].Content is required.");
      assert.equal(await messageCount(server, auth), 2, "only the valid items are stored");
      // The same words as a single send with the item's body.
      const single = await request(server, "POST", `${API}/Accounts/${auth.sid}/Email/Messages.json`, {
        auth,
        json: message(2, { Cc: "c@example.com" }),
      });
      assert.equal(single.json.message, answered[2].message);
    });

    test("an item may use a template and SendAt, as a single send may", async () => {
      const auth = await server.createAccount("batch-template@test.example");
      const created = await request(server, "POST", `${API}/Accounts/${auth.sid}/Email/Templates.json`, {
        auth,
        json: { Name: "welcome", Subject: "Hi {{name}}", Html: "<p>Hello {{name}}</p>" },
      });
      assert.equal(created.status, 200, created.text);
      const sendAt = new Date(Date.now() + 3600_000).toISOString();
      const response = await sendBatch(server, auth, [
        {
          From: "jane.doe@yourcompany.com",
          To: "t1@example.com",
          TemplateName: "welcome",
          TemplateData: { name: "<Ada>" },
        },
        message(2, { SendAt: sendAt }),
        { From: "jane.doe@yourcompany.com", To: "t3@example.com", TemplateName: "nope" },
      ]);
      assert.equal(response.status, 200, response.text);
      const [templated, scheduled, missing] = response.json.messages;
      assert.equal(templated.subject, "Hi <Ada>");
      assert.equal(templated.html, "<p>Hello &lt;Ada&gt;</p>");
      assert.equal(templated.template_sid, created.json.sid);
      assert.equal(scheduled.status, "scheduled");
      assert.equal(Date.parse(scheduled.send_at), Date.parse(sendAt));
      assert.equal(missing.code, 15100);
      await waitFor("the templated item at the relay", () => sink.count(templated.message_id) === 1, 60_000);
      const stored = await getMessage(server, auth, scheduled.sid);
      assert.equal(stored.status, "scheduled");
      assert.equal(sink.count(scheduled.message_id), 0);
    });

    test("XML (the default) lists messages and errors in request order", async () => {
      const auth = await server.createAccount("batch-xml@test.example");
      const response = await sendBatch(server, auth, [message(0), { To: "x@example.com" }, message(2)], {
        suffix: "",
      });
      assert.equal(response.status, 200, response.text);
      assert.match(response.headers.get("content-type") ?? "", /application\/xml/);
      assert.match(
        response.text,
        /^<RestcommResponse><Messages><EmailMessage>.*<\/EmailMessage><RestException><Status>400<\/Status><Code>13001<\/Code>.*<\/RestException><EmailMessage>.*<\/EmailMessage><\/Messages><\/RestcommResponse>$/s,
      );
    });

    test("a malformed batch is a clear 400 (or 415), and nothing is sent", async () => {
      const auth = await server.createAccount("batch-bad@test.example");
      const cases: Array<[string, unknown, number, number]> = [
        ["an object", message(0), 400, 15010],
        ["empty", [], 400, 15011],
        ["over 500", Array.from({ length: 501 }, (_, i) => message(i)), 400, 15012],
      ];
      for (const [what, body, status, code] of cases) {
        const response = await sendBatch(server, auth, body);
        assert.equal(response.status, status, `${what}: ${response.text.slice(0, 300)}`);
        assert.equal(response.json.code, code, what);
      }
      const form = await request(server, "POST", `${API}/Accounts/${auth.sid}/Email/Messages/Batch.json`, {
        auth,
        form: { From: "a@example.com" },
      });
      assert.equal(form.status, 415, form.text);
      assert.equal(form.json.code, 15013);
      const broken = await request(server, "POST", `${API}/Accounts/${auth.sid}/Email/Messages/Batch.json`, {
        auth,
        body: "[{",
        headers: { "content-type": "application/json" },
      });
      assert.equal(broken.status, 400, broken.text);
      const query = await request(
        server,
        "POST",
        `${API}/Accounts/${auth.sid}/Email/Messages/Batch.json?x=1`,
        {
          auth,
          json: [message(0)],
        },
      );
      assert.equal(query.status, 400, query.text);
      assert.equal(query.json.code, 20009);
      assert.equal(await messageCount(server, auth), 0);
    });

    test("with an Idempotency-Key, a repeated batch gets the stored answer and sends nothing", async () => {
      const auth = await server.createAccount("batch-idem@test.example");
      const items = [message(0), { To: "x@example.com" }, message(2)];
      const headers = { "idempotency-key": "batch-key-1" };
      const first = await sendBatch(server, auth, items, { headers });
      assert.equal(first.status, 200, first.text);
      const repeat = await sendBatch(server, auth, items, { headers });
      assert.equal(repeat.status, 200, repeat.text);
      assert.equal(repeat.headers.get("idempotent-replayed"), "true");
      assert.equal(repeat.text, first.text, "the same SIDs, the same bytes");
      assert.equal(await messageCount(server, auth), 2);
      const changed = await sendBatch(server, auth, [message(0)], { headers });
      assert.equal(changed.status, 409, changed.text);
      assert.equal(changed.json.code, 15002);
    });
  });
}

for (const variant of await storeVariants()) {
  describe(`store: a batch's messages in one transaction (${variant.kind})`, { skip: variant.skip }, () => {
    test("acceptEmails stores all of its messages or none, whatever shares its commit", async () => {
      const testStore = await openTestStore(variant.kind);
      try {
        const { store } = testStore;
        const account = await insertAccount(store, "atomic@example.org");
        const existing = emailRow(account);
        await store.acceptEmail(existing);
        const fresh = emailRow(account);
        const neighbour = emailRow(account);
        const accepted = (message: NewEmailMessage) => ({ message, lease: null, tags: [], blobs: [] });
        const [batch, single] = await Promise.allSettled([
          // The second message repeats a stored SID: the batch fails as a whole.
          store.acceptEmails([accepted(fresh), accepted({ ...existing })]),
          store.acceptEmail(neighbour),
        ]);
        assert.equal(batch.status, "rejected");
        assert.equal(single.status, "fulfilled", "a neighbour in the same group commit is stored");
        assert.equal(await store.findEmail(account, fresh.sid), undefined, "nothing of the failed batch");
        assert.ok(await store.findEmail(account, neighbour.sid));
        const good = [emailRow(account), emailRow(account), emailRow(account)];
        await store.acceptEmails(good.map(accepted));
        for (const message of good) assert.ok(await store.findEmail(account, message.sid));
      } finally {
        await testStore.cleanup();
      }
    });
  });
}
