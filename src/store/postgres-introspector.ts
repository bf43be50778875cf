import {
  type ColumnMetadata,
  type DatabaseIntrospector,
  type DatabaseMetadata,
  type DatabaseMetadataOptions,
  type Kysely,
  PostgresDialect,
  PostgresIntrospector,
  type SchemaMetadata,
  sql,
  type TableMetadata,
} from "kysely";

/**
 * Kysely's PostgreSQL introspection, limited to the schemas of the connection's search_path.
 *
 * Kysely's Migrator lists tables to find its bookkeeping tables, before it takes its lock. Kysely's
 * own PostgreSQL introspector lists every schema of the database, and resolves each table by name
 * (has_schema_privilege, pg_get_serial_sequence) against the newest catalog, not the query's snapshot:
 * a schema or table someone else drops while the listing runs fails it (3F000, or 42P01
 * 'relation "….notifications" does not exist'), as other installations of one database and parallel
 * test runs do. This one reads only the catalogs, through the query's snapshot, of the connection's own
 * schemas, so another's drop cannot fail it, however the timing falls.
 */
export class SearchPathIntrospector implements DatabaseIntrospector {
  readonly #db: Kysely<unknown>;

  constructor(db: Kysely<unknown>) {
    this.#db = db;
  }

  getSchemas(): Promise<SchemaMetadata[]> {
    // A plain read of pg_namespace, which nothing dropped can fail.
    return new PostgresIntrospector(this.#db).getSchemas();
  }

  async getTables(
    options: DatabaseMetadataOptions = { withInternalKyselyTables: false },
  ): Promise<TableMetadata[]> {
    const internal = options.withInternalKyselyTables
      ? sql``
      : sql`and c.relname not in ('kysely_migration', 'kysely_migration_lock')`;
    const { rows: found } = await sql<TableRow>`
      select c.oid::text as oid, ns.nspname as schema, c.relname as name, c.relkind as kind
      from pg_catalog.pg_class c join pg_catalog.pg_namespace ns on ns.oid = c.relnamespace
      where ns.nspname = any (current_schemas(false)) and c.relkind in ('r', 'v', 'p') ${internal}
      order by ns.nspname, c.relname`.execute(this.#db);
    if (found.length === 0) return [];
    // By the tables' oids, in a second query: the planner then knows how few they are (with the
    // schema filter above it guessed thousands, and JIT-compiled the query, 25 ms a listing).
    // A column is auto-incrementing when a sequence depends on it (serial: 'a', identity: 'i'), which
    // is what pg_get_serial_sequence looks up, here without a look-up by name.
    const { rows: columns } = await sql<ColumnRow>`
      select a.attrelid::text as oid, a.attname as name, a.attnotnull as not_null, a.atthasdef as has_default,
        t.typname as type, tns.nspname as type_schema, d.description as comment,
        seq.found is not null as auto_incrementing
      from pg_catalog.pg_attribute a
      join pg_catalog.pg_type t on t.oid = a.atttypid
      join pg_catalog.pg_namespace tns on tns.oid = t.typnamespace
      left join pg_catalog.pg_description d on d.objoid = a.attrelid
        and d.classoid = 'pg_catalog.pg_class'::regclass and d.objsubid = a.attnum
      left join lateral (
        select true as found from pg_catalog.pg_depend dep
        join pg_catalog.pg_class s on s.oid = dep.objid and s.relkind = 'S'
        where dep.refclassid = 'pg_catalog.pg_class'::regclass and dep.refobjid = a.attrelid
          and dep.refobjsubid = a.attnum and dep.deptype in ('a', 'i')
        limit 1
      ) seq on true
      where a.attrelid = any (${found.map((table) => table.oid)}::text[]::oid[])
        and a.attnum > 0 and not a.attisdropped
      order by a.attrelid, a.attnum`.execute(this.#db);
    const tables = new Map<string, TableMetadata>(
      found.map((row) => [
        row.oid,
        { name: row.name, schema: row.schema, isView: row.kind === "v", columns: [] },
      ]),
    );
    for (const row of columns) tables.get(row.oid)?.columns.push(column(row));
    return [...tables.values()];
  }

  async getMetadata(options?: DatabaseMetadataOptions): Promise<DatabaseMetadata> {
    return { tables: await this.getTables(options) };
  }
}

interface TableRow {
  oid: string;
  schema: string;
  name: string;
  kind: string;
}

interface ColumnRow {
  oid: string;
  name: string;
  not_null: boolean;
  has_default: boolean;
  type: string;
  type_schema: string;
  comment: string | null;
  auto_incrementing: boolean;
}

function column(row: ColumnRow): ColumnMetadata {
  return {
    name: row.name,
    dataType: row.type,
    dataTypeSchema: row.type_schema,
    isAutoIncrementing: row.auto_incrementing,
    isNullable: !row.not_null,
    hasDefaultValue: row.has_default,
    comment: row.comment ?? undefined,
  };
}

/** Kysely's PostgreSQL dialect with the introspection above (what Mailroom's stores and migrators use). */
export class SearchPathPostgresDialect extends PostgresDialect {
  override createIntrospector(db: Kysely<unknown>): DatabaseIntrospector {
    return new SearchPathIntrospector(db);
  }
}
