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
import { migrationProvider } from "../src/store/migrations.js";
import { waitForFinal } from "./helpers/delivery.js";
import { API, request, startMailroom } from "./helpers/mailroom.js";
import { createTestSchema } from "./helpers/postgres.js";
import { storeVariants } from "./helpers/stores.js";

const T0 = 1_700_000_000_000;

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
      const dataDir = await mkdtemp(join(tmpdir(), "mailroom-migration-test-"));
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
      const rows = [legacyMessage(accountSid, 0), legacyMessage(accountSid, 1)];
      try {
        const migrator = new Migrator({
          db,
          provider: migrationProvider,
          migrationTableSchema: schema?.schema,
        });
        const { error } = await migrator.migrateTo("0001_initial");
        assert.equal(error, undefined);
        await sql`insert into accounts (sid, parent_sid, email_address, friendly_name, type, status, role,
          auth_token_hash, password_hash, date_created, date_updated)
          values (${accountSid}, null, 'old@example.org', 'old', 'Full', 'active', 'Administrator',
          ${hashAuthToken(token)}, null, ${T0}, ${T0})`.execute(db);
        for (const row of rows) {
          await sql`insert into email_messages (${sql.join(Object.keys(row).map((k) => sql.ref(k)))})
            values (${sql.join(Object.values(row))})`.execute(db);
          await sql`insert into delivery_queue (message_sid, due_at) values (${row.sid}, ${row.date_created})`.execute(
            db,
          );
        }
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
      try {
        const auth = { sid: accountSid, token };
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
            {
              auth,
            },
          );
          assert.match(mime.text, new RegExp(`Subject: ${row.subject}`));
          assert.match(mime.text, new RegExp(`Content-Type: ${row.type.split(";")[0]}`));
          assert.ok(!mime.text.includes("hidden@example.com"), "BCC stays out of the headers");
        }
        const list = await request(
          server,
          "GET",
          `${API}/Accounts/${accountSid}/Email/Messages.json?To=bob`,
          {
            auth,
          },
        );
        assert.equal(list.json.total, 2, "the list filters still find them");
      } finally {
        await server.close();
        await schema?.drop();
        await rm(dataDir, { recursive: true, force: true });
      }
    });
  });
}
