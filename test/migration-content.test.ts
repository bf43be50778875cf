import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { sql } from "kysely";
import { newSid } from "../src/domain/ids.js";
import { waitForFinal } from "./helpers/delivery.js";
import { openLegacyStore, LEGACY_T0 as T0 } from "./helpers/legacy-store.js";
import { API, request } from "./helpers/mailroom.js";
import { storeVariants } from "./helpers/stores.js";

/** A message as a Mailroom before migration 0002 stored it: every part of it in its own column. */
function legacyMessage(accountSid: string, n: number) {
  const sid = newSid("EM", T0 + n);
  return {
    sid,
    account_sid: accountSid,
    from_address: '"Doe, Jane" <jane.doe@example.org>',
    to_addresses: "john.doe@example.com, Bob <bob@example.net>",
    cc_addresses: n === 0 ? "carol@example.com" : "",
    bcc_addresses: n === 0 ? "Hidden <hidden@example.com>" : "",
    subject: `Old message ${n}`,
    body: n === 0 ? "<p>Hello from before</p>" : "",
    type: n === 0 ? "text/html; charset=UTF-8" : "text/plain; charset=UTF-8",
    status: "queued",
    message_id: `<${sid}@example.org>`,
    status_callback: null,
    error_code: null,
    error_message: null,
    num_attempts: 0,
    date_created: T0 + n,
    date_updated: T0 + n,
    date_sent: T0 + n,
    date_delivered: null,
  };
}

for (const variant of await storeVariants()) {
  describe(`messages stored before the message model (${variant.kind})`, { skip: variant.skip }, () => {
    test("migration 0002 carries them over: they read back unchanged and are delivered", async () => {
      const legacy = await openLegacyStore(variant.kind, "0001_initial");
      try {
        const accountSid = legacy.admin.sid;
        const rows = [legacyMessage(accountSid, 0), legacyMessage(accountSid, 1)];
        for (const row of rows) {
          await sql`insert into email_messages (${sql.join(Object.keys(row).map((k) => sql.ref(k)))})
            values (${sql.join(Object.values(row))})`.execute(legacy.db);
          await sql`insert into delivery_queue (message_sid, due_at) values (${row.sid}, ${row.date_created})`.execute(
            legacy.db,
          );
        }

        const server = await legacy.start();
        try {
          const auth = legacy.admin;
          for (const row of rows) {
            const final = await waitForFinal(server, auth, row.sid);
            assert.equal(final.status, "sent", final.error_message);
            assert.equal(final.from, row.from_address);
            assert.equal(final.to, row.to_addresses);
            assert.equal(final.cc, row.cc_addresses || undefined);
            assert.equal(final.bcc, row.bcc_addresses || undefined);
            assert.equal(final.subject, row.subject);
            assert.equal(final.body, row.body);
            assert.equal(final.type, row.type);
            assert.equal(final.message_id, row.message_id);
            const mime = await request(
              server,
              "GET",
              `${API}/Accounts/${accountSid}/Email/Messages/${row.sid}/Mime`,
              { auth },
            );
            assert.match(mime.text, new RegExp(`Subject: ${row.subject}`));
            assert.match(mime.text, new RegExp(`Content-Type: ${row.type.split(";")[0]}`));
            assert.ok(!mime.text.includes("hidden@example.com"), "BCC stays out of the headers");
          }
          const list = await request(
            server,
            "GET",
            `${API}/Accounts/${accountSid}/Email/Messages.json?To=bob`,
            { auth },
          );
          assert.equal(list.json.total, 2, "the list filters still find them");
        } finally {
          await server.close();
        }
      } finally {
        await legacy.remove();
      }
    });
  });
}
