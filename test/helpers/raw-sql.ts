import BetterSqlite3 from "better-sqlite3";
import pg from "pg";
import { type StoreLocation, sqliteFile } from "../../src/store/open-store.js";

/**
 * Runs one SQL statement straight on a store's database, beside whatever has it open: for tests that
 * look at rows no API shows yet, or set up rows the API would refuse. `?` placeholders on both databases.
 * Numbers come back as numbers (PostgreSQL's bigint and count too).
 */
export async function rawQuery<R = Record<string, unknown>>(
  location: StoreLocation,
  text: string,
  values: unknown[] = [],
): Promise<R[]> {
  if (!location.databaseUrl) {
    const connection = new BetterSqlite3(sqliteFile(location));
    try {
      connection.pragma("busy_timeout = 5000");
      const statement = connection.prepare(text);
      if (statement.reader) return statement.all(...values) as R[];
      statement.run(...values);
      return [];
    } finally {
      connection.close();
    }
  }
  const client = new pg.Client({ connectionString: location.databaseUrl });
  await client.connect();
  try {
    let n = 0;
    const result = await client.query(
      text.replace(/\?/g, () => `$${++n}`),
      values,
    );
    // bigint (int8) and numeric (sums, counts) arrive as strings; tests compare numbers.
    const numeric = result.fields
      .filter((f) => f.dataTypeID === 20 || f.dataTypeID === 1700)
      .map((f) => f.name);
    for (const row of result.rows)
      for (const name of numeric) if (row[name] !== null) row[name] = Number(row[name]);
    return result.rows as R[];
  } finally {
    await client.end();
  }
}
