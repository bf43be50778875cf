import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { Kysely, Migrator, SqliteDialect, sql } from "kysely";
import pg from "pg";
import { newAuthToken, newSid } from "../../src/domain/ids.js";
import { hashAuthToken } from "../../src/domain/secrets.js";
import { migrationProvider } from "../../src/store/migrations.js";
import { SearchPathPostgresDialect } from "../../src/store/postgres-introspector.js";
import { type Credentials, startMailroom, type TestServer } from "./mailroom.js";
import { createTestSchema } from "./postgres.js";
import type { StoreKind } from "./stores.js";

/** When the legacy rows were written. */
export const LEGACY_T0 = 1_700_000_000_000;

export interface LegacyStore {
  /** A connection of the old version's time: its tables only, so rows go in by raw SQL. */
  db: Kysely<unknown>;
  /** The Administrator account the old version had. */
  admin: Credentials;
  /** Closes `db` and starts today's Mailroom on the store: the later migrations run as it starts. */
  start(): Promise<TestServer>;
  /** Closes `db` (if still open), removes the data dir and drops the schema. */
  remove(): Promise<void>;
}

/**
 * A store as an older Mailroom left it: migrated up to `migration` only, with an Administrator account.
 * The test puts that version's rows in through `db`, then `start()`s today's server on it.
 */
export async function openLegacyStore(kind: StoreKind, migration: string): Promise<LegacyStore> {
  const dataDir = await mkdtemp(join(tmpdir(), "mailroom-legacy-test-"));
  const schema = kind === "postgres" ? await createTestSchema() : undefined;
  // The store's own dialect: its introspection, which the migrator uses, reads only this schema.
  const db =
    schema === undefined
      ? new Kysely<unknown>({
          dialect: new SqliteDialect({ database: new BetterSqlite3(join(dataDir, "mailroom.db")) }),
        })
      : new Kysely<unknown>({
          dialect: new SearchPathPostgresDialect({
            pool: new pg.Pool({ connectionString: schema.url, max: 1 }),
          }),
        });
  let open = true;
  const close = async () => {
    if (open) await db.destroy();
    open = false;
  };
  const remove = async () => {
    await close();
    await schema?.drop();
    await rm(dataDir, { recursive: true, force: true });
  };
  const admin = { sid: newSid("AC"), token: newAuthToken() };
  try {
    const migrator = new Migrator({ db, provider: migrationProvider, migrationTableSchema: schema?.schema });
    const { error } = await migrator.migrateTo(migration);
    assert.equal(error, undefined);
    await sql`insert into accounts (sid, parent_sid, email_address, friendly_name, type, status, role,
      auth_token_hash, password_hash, date_created, date_updated)
      values (${admin.sid}, null, 'old@example.org', 'old', 'Full', 'active', 'Administrator',
      ${hashAuthToken(admin.token)}, null, ${LEGACY_T0}, ${LEGACY_T0})`.execute(db);
  } catch (error) {
    await remove();
    throw error;
  }
  return {
    db,
    admin,
    async start() {
      await close();
      return startMailroom({
        store: kind,
        dataDir,
        databaseUrl: schema?.url,
        keepData: true,
        admin,
      });
    },
    remove,
  };
}
