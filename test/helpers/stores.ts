import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openStore, type StoreLocation } from "../../src/store/open-store.js";
import type { MailStore } from "../../src/store/types.js";
import { createTestSchema, postgresUnavailableReason } from "./postgres.js";

export type StoreKind = "sqlite" | "postgres";

export interface StoreVariant {
  kind: StoreKind;
  /** A reason to skip this variant's tests, or false to run them. */
  skip: string | false;
}

/**
 * The stores every store- and API-level suite runs against. PostgreSQL is skipped with a clear reason
 * when unreachable (or fails the run when MAILROOM_TEST_REQUIRE_PG=1).
 */
export async function storeVariants(): Promise<StoreVariant[]> {
  const pgReason = await postgresUnavailableReason();
  return [
    { kind: "sqlite", skip: false },
    { kind: "postgres", skip: pgReason ?? false },
  ];
}

export interface TestStore {
  kind: StoreKind;
  /** The first store opened (migrated unless `migrate: false`). */
  store: MailStore;
  /** Where the data lives: a temp dir (SQLite) or a fresh schema's URL (PostgreSQL). */
  location: StoreLocation;
  /** The PostgreSQL schema, when the kind is postgres. */
  schema: string | undefined;
  /** The same environment a `mailroom` process would get to use this store. */
  env: Record<string, string>;
  /** Opens another store on the same data, as a second process would; closed by cleanup(). */
  openAnother(): MailStore;
  /** Closes every store opened here and removes the data. */
  cleanup(): Promise<void>;
}

/** A fresh, empty store of the given kind for one test, in its own temp dir or PostgreSQL schema. */
export async function openTestStore(
  kind: StoreKind,
  options: { migrate?: boolean } = {},
): Promise<TestStore> {
  const dataDir = await mkdtemp(join(tmpdir(), "mailroom-store-test-"));
  const pgSchema = kind === "postgres" ? await createTestSchema() : undefined;
  const location: StoreLocation = { dataDir, databaseUrl: pgSchema?.url, databasePoolSize: 5 };
  const opened: MailStore[] = [];
  const openAnother = () => {
    const store = openStore(location);
    opened.push(store);
    return store;
  };
  const store = openAnother();
  if (options.migrate !== false) await store.migrate();
  return {
    kind,
    store,
    location,
    schema: pgSchema?.schema,
    env: { MAILROOM_DATA_DIR: dataDir, ...(pgSchema ? { MAILROOM_DATABASE_URL: pgSchema.url } : {}) },
    openAnother,
    async cleanup() {
      await Promise.all(opened.map((s) => s.close().catch(() => {})));
      await pgSchema?.drop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
