import { randomBytes } from "node:crypto";
import { type Kysely, sql } from "kysely";
import type { Database } from "./schema.js";
import {
  IDEMPOTENCY_CLAIM_LOST,
  type IdempotencyClaim,
  type IdempotencyClaimRequest,
  type IdempotentAnswer,
} from "./types.js";

/**
 * Idempotency-Keys (issue 14), Stripe's design: a request first claims its key in a small write of
 * its own (a row with a claim token and `locked_until`, unique per account and key); the transaction
 * that stores its message(s) then stores the answer on that row, only if the claim is still its own
 * (storeAnswers). Two requests with one key, in one process or two sharing PostgreSQL, cannot both
 * claim it: the insert of one meets the other's row, and every change of an existing row is a
 * compare-and-set on the token it read. A claim whose request died between claim and commit (kill -9)
 * is taken over once `locked_until` has passed; the dead request stored nothing, so nothing is sent twice.
 */
export async function claimIdempotencyKey(
  db: Kysely<Database>,
  claim: IdempotencyClaimRequest,
): Promise<IdempotencyClaim> {
  const token = randomBytes(16).toString("hex");
  const fresh = {
    request_hash: claim.requestHash,
    claim_token: token,
    locked_until: claim.now + claim.lockMs,
    response_status: null,
    response_type: null,
    response_body: null,
    date_created: claim.now,
    expires_at: claim.now + claim.ttlMs,
  };
  // A row deleted or taken over between our reads is looked at again; three rounds are plenty.
  for (let round = 0; round < 3; round++) {
    const inserted = await db
      .insertInto("idempotency_keys")
      .values({ account_sid: claim.accountSid, idem_key: claim.key, ...fresh })
      .onConflict((oc) => oc.columns(["account_sid", "idem_key"]).doNothing())
      .executeTakeFirst();
    if (Number(inserted.numInsertedOrUpdatedRows ?? 0) > 0) return { kind: "claimed", token };
    const row = await db
      .selectFrom("idempotency_keys")
      .selectAll()
      .where("account_sid", "=", claim.accountSid)
      .where("idem_key", "=", claim.key)
      .executeTakeFirst();
    if (!row) continue;
    const expired = Number(row.expires_at) <= claim.now;
    if (!expired) {
      if (row.request_hash !== claim.requestHash) return { kind: "mismatch" };
      if (row.response_status !== null) {
        return {
          kind: "replay",
          answer: {
            status: Number(row.response_status),
            contentType: row.response_type ?? "application/json",
            body: row.response_body ?? "",
          },
        };
      }
      if (row.locked_until !== null && Number(row.locked_until) > claim.now) return { kind: "in-flight" };
    }
    // Expired, or a claim whose request died: take it over, unless someone else just did.
    const taken = await db
      .updateTable("idempotency_keys")
      .set(fresh)
      .where("account_sid", "=", claim.accountSid)
      .where("idem_key", "=", claim.key)
      .where("claim_token", "=", row.claim_token)
      // Checked again as the row is written: an answer committed meanwhile (PostgreSQL re-reads a row
      // it waited for) keeps the key, unless the key has expired.
      .where((eb) =>
        eb.or([
          eb("expires_at", "<=", claim.now),
          eb.and([
            eb("response_status", "is", null),
            eb.or([eb("locked_until", "is", null), eb("locked_until", "<=", claim.now)]),
          ]),
        ]),
      )
      .executeTakeFirst();
    if (Number(taken.numUpdatedRows) > 0) return { kind: "claimed", token };
  }
  return { kind: "in-flight" };
}

/** Deletes a claim that was never answered (its request failed), if it is still this token's. */
export async function releaseIdempotencyKey(
  db: Kysely<Database>,
  accountSid: string,
  key: string,
  token: string,
): Promise<void> {
  await db
    .deleteFrom("idempotency_keys")
    .where("account_sid", "=", accountSid)
    .where("idem_key", "=", key)
    .where("claim_token", "=", token)
    .where("response_status", "is", null)
    .execute();
}

/**
 * Deletes up to `limit` keys that expired before `now`, taken oldest first from the expiry index:
 * each run touches only what it deletes, however many live keys there are.
 */
export async function purgeIdempotencyKeys(
  db: Kysely<Database>,
  now: number,
  limit: number,
): Promise<number> {
  const result = await sql`
    delete from idempotency_keys where (account_sid, idem_key) in (
      select account_sid, idem_key from idempotency_keys
      where expires_at < ${now} order by expires_at limit ${limit}
    )`.execute(db);
  return Number(result.numAffectedRows ?? 0);
}

/** The SQL that stores one answer on a key still claimed by its token (SQLite: one row per run). */
export const STORE_ANSWER_SQL = `update idempotency_keys
  set response_status = ?, response_type = ?, response_body = ?, locked_until = null
  where account_sid = ? and idem_key = ? and claim_token = ? and response_status is null`;

export function answerParams(a: IdempotentAnswer): Array<string | number> {
  return [a.answer.status, a.answer.contentType, a.answer.body, a.accountSid, a.key, a.token];
}

/** The error that fails a write batch whose claim was taken over: nothing of that batch is stored. */
export function claimLost(answer: IdempotentAnswer): Error {
  return Object.assign(
    new Error(`the claim on Idempotency-Key ${JSON.stringify(answer.key)} was taken over`),
    { code: IDEMPOTENCY_CLAIM_LOST },
  );
}

/** PostgreSQL: the answers of a batch in one statement; returns how many keys it updated. */
export async function storePostgresAnswers(
  db: Kysely<Database>,
  answers: IdempotentAnswer[],
): Promise<number> {
  const column = <T>(value: (a: IdempotentAnswer) => T) => answers.map(value);
  const result = await sql`
    update idempotency_keys k
    set response_status = a.status, response_type = a.content_type, response_body = a.body,
      locked_until = null
    from unnest(
      ${column((a) => a.answer.status)}::integer[],
      ${column((a) => a.answer.contentType)}::text[],
      ${column((a) => a.answer.body)}::text[],
      ${column((a) => a.accountSid)}::text[],
      ${column((a) => a.key)}::text[],
      ${column((a) => a.token)}::text[]
    ) as a(status, content_type, body, account_sid, idem_key, token)
    where k.account_sid = a.account_sid and k.idem_key = a.idem_key and k.claim_token = a.token
      and k.response_status is null`.execute(db);
  return Number(result.numAffectedRows ?? 0);
}
