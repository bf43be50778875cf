import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import BetterSqlite3 from "better-sqlite3";
import { Kysely, Migrator, PostgresDialect, SqliteDialect, sql } from "kysely";
import pg from "pg";
import { newAuthToken, newSid } from "../src/domain/ids.js";
import { hashAuthToken } from "../src/domain/secrets.js";
import { Purger } from "../src/lifecycle/purger.js";
import { migrationProvider } from "../src/store/migrations.js";
import { getMessage } from "./helpers/delivery.js";
import { startMailroom } from "./helpers/mailroom.js";
import { createTestSchema } from "./helpers/postgres.js";
import { openRawDb } from "./helpers/raw-db.js";
import { storeVariants } from "./helpers/stores.js";

// Migration 0012_retention on a store with messages already (issue 16): which message uses which
// attachment bytes is read from their content, so the purge can delete the bytes with them.
const T0 = 1_700_000_000_000;

for (const variant of await storeVariants()) {
  describe(`attachments stored before retention (${variant.kind})`, { skip: variant.skip }, () => {
    test("0012 records their references; the purge then deletes their bytes with the message", async () => {
      const dataDir = await mkdtemp(join(tmpdir(), "mailroom-migration-retention-"));
      const schema = variant.kind === "postgres" ? await createTestSchema() : undefined;
      const db =
        schema === undefined
          ? new Kysely<unknown>({
              dialect: new SqliteDialect({ database: new BetterSqlite3(join(dataDir, "mailroom.db")) }),
            })
          : new Kysely<unknown>({
              dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: schema.url, max: 1 }) }),
            });
      const token = newAuthToken();
      const accountSid = newSid("AC");
      const sid = newSid("EM", T0);
      const sha256 = "a".repeat(64);
      try {
        const migrator = new Migrator({
          db,
          provider: migrationProvider,
          migrationTableSchema: schema?.schema,
        });
        const { error } = await migrator.migrateTo("0006_h13-hooks");
        assert.equal(error, undefined);
        await sql`insert into accounts (sid, parent_sid, email_address, friendly_name, type, status, role,
          auth_token_hash, password_hash, date_created, date_updated)
          values (${accountSid}, null, 'old@example.org', 'old', 'Full', 'active', 'Administrator',
          ${hashAuthToken(token)}, null, ${T0}, ${T0})`.execute(db);
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
          db,
        );
        await sql`insert into attachment_blobs (sha256, size, content) values (${sha256}, 3, ${Buffer.from("abc")})`.execute(
          db,
        );
      } finally {
        await db.destroy();
      }

      const server = await startMailroom({
        store: variant.kind,
        dataDir,
        databaseUrl: schema?.url,
        keepData: true,
        admin: { sid: accountSid, token },
      });
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
        const message = await getMessage(server, { sid: accountSid, token }, sid);
        assert.equal(message.content_purged, true);
        assert.equal(message.text, undefined);
        assert.equal(message.subject, "Old with attachment");
      } finally {
        await raw.destroy();
        await server.close();
        await schema?.drop();
        await rm(dataDir, { recursive: true, force: true });
      }
    });
  });
}
