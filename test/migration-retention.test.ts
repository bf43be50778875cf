import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { sql } from "kysely";
import { newSid } from "../src/domain/ids.js";
import { Purger } from "../src/lifecycle/purger.js";
import { getMessage } from "./helpers/delivery.js";
import { openLegacyStore, LEGACY_T0 as T0 } from "./helpers/legacy-store.js";
import { openRawDb } from "./helpers/raw-db.js";
import { storeVariants } from "./helpers/stores.js";

// Migration 0012_retention on a store with messages already (issue 16): which message uses which
// attachment bytes is read from their content, so the purge can delete the bytes with them.
for (const variant of await storeVariants()) {
  describe(`attachments stored before retention (${variant.kind})`, { skip: variant.skip }, () => {
    test("0012 records their references; the purge then deletes their bytes with the message", async () => {
      const legacy = await openLegacyStore(variant.kind, "0006_h13-hooks");
      const accountSid = legacy.admin.sid;
      const sid = newSid("EM", T0);
      const sha256 = "a".repeat(64);
      try {
        const content = {
          from: { name: "", address: "a@example.org" },
          to: [{ name: "", address: "b@example.com" }],
          cc: [],
          bcc: [],
          reply_to: [],
          subject: "Old with attachment",
          body: null,
          type: null,
          html: null,
          text: null,
          headers: {},
          tags: {},
          attachments: [
            {
              filename: "a.bin",
              content_type: "application/octet-stream",
              size: 3,
              content_id: null,
              sha256,
            },
          ],
        };
        await sql`insert into email_messages (sid, account_sid, from_address, to_addresses, subject, content,
            text_part, status, message_id, num_attempts, date_created, date_updated, date_sent)
          values (${sid}, ${accountSid}, 'a@example.org', 'b@example.com', 'Old with attachment',
            ${JSON.stringify(content)}, 'old text', 'sent', ${`<${sid}@example.org>`}, 1, ${T0}, ${T0}, ${T0})`.execute(
          legacy.db,
        );
        await sql`insert into attachment_blobs (sha256, size, content) values (${sha256}, 3, ${Buffer.from("abc")})`.execute(
          legacy.db,
        );

        const server = await legacy.start();
        const raw = openRawDb(server);
        try {
          const refs = await raw.selectFrom("attachment_refs").selectAll().execute();
          assert.deepEqual(refs, [{ sha256, message_sid: sid }]);
          const purger = new Purger(
            { store: server.mailroom.store, logger: { info() {}, error() {} } },
            { defaults: { contentMs: 60_000, metadataMs: 3_600_000 * 24 * 365 * 10 }, intervalMs: 3_600_000 },
          );
          const report = await purger.runPass();
          assert.equal(report.content, 1);
          assert.equal(report.blobs, 1, "the bytes went with their only message");
          assert.deepEqual(await raw.selectFrom("attachment_blobs").select("sha256").execute(), []);
          const message = await getMessage(server, legacy.admin, sid);
          assert.equal(message.content_purged, true);
          assert.equal(message.text, undefined);
          assert.equal(message.subject, "Old with attachment");
        } finally {
          await raw.destroy();
          await server.close();
        }
      } finally {
        await legacy.remove();
      }
    });
  });
}
