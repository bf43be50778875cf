import { postgresUnavailableReason } from "./postgres.js";

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
