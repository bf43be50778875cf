import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { type ColumnMetadata, Kysely, PostgresDialect, sql } from "kysely";
import pg from "pg";
import { migrateToLatest, migrationProvider } from "../src/store/migrations.js";
import { SearchPathPostgresDialect } from "../src/store/postgres-introspector.js";
import type { Database } from "../src/store/schema.js";
import { adminQuery, createTestSchema } from "./helpers/postgres.js";
import { storeVariants } from "./helpers/stores.js";

// A migration-content test once failed under load with "database migration  failed: relation
// "notifications" does not exist": before taking its lock, Kysely's migrator lists tables, and Kysely's
// PostgreSQL listing reads every schema of the database, resolving each table by name in the newest
// catalog; another test's schema dropped during that listing failed it. The store's dialect lists only
// the connection's own schemas (src/store/postgres-introspector.ts).

type Schema = Awaited<ReturnType<typeof createTestSchema>>;

/**
 * Runs the migrator on `target` in a transaction whose snapshot was taken before `drop` ran elsewhere:
 * the race the flake lost, every time instead of by luck under load. The migrator's own transaction
 * joins this one (PostgreSQL warns and carries on) and its commit ends it.
 */
async function migrateAcrossDrop(
  dialect: typeof PostgresDialect,
  target: Schema,
  drop: string,
): Promise<void> {
  const pool = new pg.Pool({ connectionString: target.url, max: 1 });
  const db = new Kysely<Database>({ dialect: new dialect({ pool }) });
  try {
    await db.connection().execute(async (conn) => {
      await sql`begin isolation level repeatable read`.execute(conn);
      await sql`select 1`.execute(conn); // the snapshot: taken at the transaction's first statement
      await adminQuery(drop);
      await migrateToLatest(conn, target.schema);
    });
  } finally {
    await db.destroy();
  }
}

/** Another installation's schema, with tables, that can be dropped under the migrator. */
async function otherInstallation(): Promise<Schema> {
  const other = await createTestSchema();
  await adminQuery(`create table ${other.schema}.accounts (sid text primary key)`);
  await adminQuery(`create table ${other.schema}.notifications (sid text primary key, n bigserial)`);
  return other;
}

const ALL_MIGRATIONS = Object.keys(await migrationProvider.getMigrations()).sort();

const [, postgres] = await storeVariants();
describe("PostgreSQL migrations beside other schemas", {
  skip: postgres?.skip ?? "no PostgreSQL variant",
}, () => {
  test("the store's introspection describes its own schema's tables as Kysely's does, and no other's", async () => {
    const ours = await createTestSchema();
    const other = await otherInstallation();
    const store = new Kysely<unknown>({
      dialect: new SearchPathPostgresDialect({ pool: new pg.Pool({ connectionString: ours.url, max: 1 }) }),
    });
    try {
      await adminQuery(`create table ${ours.schema}.t (a integer, b bigserial, c integer generated always as identity,
        d text not null default 'x')`);
      await adminQuery(`comment on column ${ours.schema}.t.a is 'the a'`);
      await adminQuery(`create view ${ours.schema}.v as select a, d from ${ours.schema}.t`);
      await adminQuery(`create table ${ours.schema}.kysely_migration (name text)`);
      // What Kysely's own PostgreSQL introspector answers for these tables (compared when this was written;
      // not compared here, since its listing of every schema is what other test runs' drops can fail).
      const column = (
        name: string,
        dataType: string,
        more: Partial<ColumnMetadata> = {},
      ): ColumnMetadata => ({
        name,
        dataType,
        dataTypeSchema: "pg_catalog",
        isAutoIncrementing: false,
        isNullable: true,
        hasDefaultValue: false,
        comment: undefined,
        ...more,
      });
      const table = (name: string, isView: boolean, columns: ColumnMetadata[]) => ({
        name,
        schema: ours.schema,
        isView,
        columns,
      });
      const t = table("t", false, [
        column("a", "int4", { comment: "the a" }),
        column("b", "int8", { isAutoIncrementing: true, isNullable: false, hasDefaultValue: true }),
        column("c", "int4", { isAutoIncrementing: true, isNullable: false }),
        column("d", "text", { isNullable: false, hasDefaultValue: true }),
      ]);
      const v = table("v", true, [column("a", "int4"), column("d", "text")]);
      const bookkeeping = table("kysely_migration", false, [column("name", "text")]);
      assert.deepEqual(await store.introspection.getTables(), [t, v]);
      assert.deepEqual(await store.introspection.getTables({ withInternalKyselyTables: true }), [
        bookkeeping,
        t,
        v,
      ]);
    } finally {
      await store.destroy();
      await Promise.all([ours.drop(), other.drop()]);
    }
  });

  for (const [what, drop] of [
    ["a table of another schema", (other: Schema) => `drop table ${other.schema}.notifications`],
    ["another schema", (other: Schema) => `drop schema ${other.schema} cascade`],
  ] as const) {
    test(`${what} dropped while the migrator looks for its tables fails nothing`, async () => {
      const schemas: Schema[] = [];
      const fresh = async (schema: Promise<Schema>) => {
        schemas.push(await schema);
        return schemas[schemas.length - 1] as Schema;
      };
      try {
        // The race is real: through Kysely's own dialect the same run fails as the flake did.
        const control = await fresh(createTestSchema());
        await assert.rejects(
          migrateAcrossDrop(PostgresDialect, control, drop(await fresh(otherInstallation()))),
          /database migration {2}failed: (relation|schema) ".+" does not exist/,
        );
        const ours = await fresh(createTestSchema());
        await migrateAcrossDrop(SearchPathPostgresDialect, ours, drop(await fresh(otherInstallation())));
        const applied = await adminQuery<{ name: string }>(
          `select name from ${ours.schema}.kysely_migration order by name`,
        );
        assert.deepEqual(
          applied.map((row) => row.name),
          ALL_MIGRATIONS,
        );
      } finally {
        await Promise.all(schemas.map((schema) => schema.drop()));
      }
    });
  }
});
