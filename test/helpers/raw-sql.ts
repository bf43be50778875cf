import { join } from "node:path";
import Database from "better-sqlite3";
import pg from "pg";

/**
 * Runs one statement on a test server's store behind its back, as another program sharing the
 * database would (`?` placeholders, on either store): for rows no API call makes yet.
 */
export async function execSql(
  server: { dataDir: string; databaseUrl: string | undefined },
  text: string,
  values: unknown[] = [],
): Promise<void> {
  if (server.databaseUrl) {
    let n = 0;
    const client = new pg.Client({ connectionString: server.databaseUrl });
    await client.connect();
    try {
      await client.query(
        text.replace(/\?/g, () => `$${++n}`),
        values,
      );
    } finally {
      await client.end();
    }
    return;
  }
  const db = new Database(join(server.dataDir, "mailroom.db"));
  try {
    db.pragma("busy_timeout = 5000");
    db.prepare(text).run(...values);
  } finally {
    db.close();
  }
}
