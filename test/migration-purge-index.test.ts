import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { sql } from "kysely";
import { newSid } from "../src/domain/ids.js";
import { Purger } from "../src/lifecycle/purger.js";
import { getMessage } from "./helpers/delivery.js";
import { openLegacyStore, LEGACY_T0 as T0 } from "./helpers/legacy-store.js";
import { openRawDb } from "./helpers/raw-db.js";
import { plainContent } from "./helpers/store-rows.js";
import { storeVariants } from "./helpers/stores.js";

// Migration 0014_purge_by_created on a store with messages already: the purge's index of unpurged
// messages is keyed by creation instead of last change (a delivery no longer moves it), and the
// content purge finds by it what it found before.
for (const variant of await storeVariants()) {
  describe(`the purge's index by creation (${variant.kind})`, { skip: variant.skip }, () => {
    test("0014 replaces the index; a pass then purges the old final message and passes the queued one", async () => {
      const legacy = await openLegacyStore(variant.kind, "0013_purge_by_account");
      const accountSid = legacy.admin.sid;
      const sent = newSid("EM", T0);
      const queued = newSid("EM", T0 + 1);
      const content = plainContent({
        from: { name: "", address: "a@example.org" },
        to: [{ name: "", address: "b@example.com" }],
        subject: "Old",
        body: null,
        type: null,
      });
      try {
        for (const [sid, status] of [
          [sent, "sent"],
          [queued, "queued"],
        ] as const) {
          await sql`insert into email_messages (sid, account_sid, from_address, to_addresses, subject, content,
              text_part, status, message_id, num_attempts, date_created, date_updated, date_sent)
            values (${sid}, ${accountSid}, 'a@example.org', 'b@example.com', 'Old', ${JSON.stringify(content)},
              'old text', ${status}, ${`<${sid}@example.org>`}, 1, ${T0}, ${T0 + 10}, ${T0})`.execute(
            legacy.db,
          );
        }

        const server = await legacy.start();
        const raw = openRawDb(server);
        try {
          const indexes =
            variant.kind === "sqlite"
              ? await sql<{ name: string }>`select name from sqlite_master
                  where type = 'index' and tbl_name = 'email_messages' and name like 'email_messages_unpurged%'`.execute(
                  raw,
                )
              : await sql<{ name: string }>`select indexname as name from pg_indexes
                  where schemaname = current_schema() and tablename = 'email_messages'
                    and indexname like 'email_messages_unpurged%'`.execute(raw);
          assert.deepEqual(
            indexes.rows.map((row) => row.name),
            ["email_messages_unpurged_created"],
          );
          const purger = new Purger(
            { store: server.mailroom.store, logger: { info() {}, error() {} } },
            { defaults: { contentMs: 60_000, metadataMs: 3_600_000 * 24 * 365 * 10 }, intervalMs: 3_600_000 },
          );
          const report = await purger.runPass();
          assert.equal(report.content, 1, "only the final message");
          const purged = await getMessage(server, legacy.admin, sent);
          assert.equal(purged.content_purged, true);
          assert.equal(purged.text, undefined);
          const kept = await raw
            .selectFrom("email_messages")
            .select(["text_part", "content_purged_at"])
            .where("sid", "=", queued)
            .executeTakeFirstOrThrow();
          assert.deepEqual(kept, { text_part: "old text", content_purged_at: null });
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
