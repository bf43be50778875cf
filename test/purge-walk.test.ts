import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { PurgeCursor, PurgeCutoffs, PurgeKind } from "../src/store/lifecycle-queries.js";
import type { MailStore } from "../src/store/types.js";
import { attemptRecord, emailRow, insertAccount, T0 } from "./helpers/store-rows.js";
import { openTestStore, type StoreVariant, storeVariants, type TestStore } from "./helpers/stores.js";

// The purge's walk (issue 16) at the store: each account against its own cutoff, batch after batch
// from where the last one stopped, across more accounts than one batch looks at; a message not final
// yet is passed, never purged, and never stops the walk.
const LEASE = { owner: "w", expiresAt: T0 + 10_000_000_000 };
const SHORT = T0 + 200;
const DEFAULT = T0 + 100;
const LONG = T0 + 50;

for (const variant of (await storeVariants()) as StoreVariant[]) {
  describe(`the purge's walk (${variant.kind})`, { skip: variant.skip }, () => {
    let env: TestStore;
    let store: MailStore;
    let cutoffs: PurgeCutoffs;
    /** How many content purges and row deletions each walk should find. */
    let due = 0;

    /** A delivered message whose last change was at `at`. */
    const delivered = async (account: string, at: number) => {
      const row = emailRow(account, { date_created: at - 5, date_updated: at - 5 });
      await store.acceptEmail(row, LEASE);
      const settled = await store.recordAttempt(
        attemptRecord(account, row.sid, { dateDelivered: at }, { date_started: at - 5, date_finished: at }),
      );
      assert.ok(settled);
    };
    const walk = async (kind: PurgeKind, limit: number) => {
      let purged = 0;
      let batches = 0;
      let after: PurgeCursor | undefined;
      for (;;) {
        const batch = await store.purgeBatch({ kind, cutoffs, now: T0 + 1000, limit, after });
        purged += batch.messages;
        batches++;
        assert.ok(batch.messages <= limit);
        if (batch.next === undefined) return { purged, batches };
        after = batch.next;
      }
    };

    before(async () => {
      env = await openTestStore(variant.kind);
      store = env.store;
      const shortLived = await insertAccount(store, "short@example.org");
      const keptLong = await insertAccount(store, "long@example.org");
      const usual = await insertAccount(store, "usual@example.org");
      cutoffs = {
        defaultBefore: DEFAULT,
        groups: [
          { before: SHORT, accountSids: [shortLived] },
          { before: LONG, accountSids: [keptLong] },
        ],
      };
      // Thirty messages each, 10 ms apart: due are those older than the account's own cutoff.
      for (const [account, cutoff] of [
        [shortLived, SHORT],
        [keptLong, LONG],
        [usual, DEFAULT],
      ] as const) {
        for (let i = 0; i < 30; i++) {
          const at = T0 + 10 * i;
          await delivered(account, at);
          if (at < cutoff) due++;
        }
        // Old, and still queued: passed over.
        await store.acceptEmail(emailRow(account, { date_created: T0 - 1000, date_updated: T0 - 1000 }));
      }
      // More accounts than one batch looks at (200), one due message each.
      for (let i = 0; i < 205; i++) {
        await delivered(await insertAccount(store, `many-${i}@example.org`), T0);
        due++;
      }
    });
    after(() => env?.cleanup());

    test("each account's due content, exactly, in batches that go on where the last stopped", async () => {
      assert.deepEqual(await store.countPurgeable({ content: cutoffs, metadata: cutoffs }), {
        content: due,
        metadata: due,
      });
      const { purged, batches } = await walk("content", 7);
      assert.equal(purged, due);
      assert.ok(batches >= Math.ceil(due / 7), `${batches} batches`);
      assert.equal((await walk("content", 7)).purged, 0, "nothing is due twice");
      const left = await store.countPurgeable({ content: cutoffs, metadata: cutoffs });
      assert.equal(left.content, 0);
    });

    test("then each account's due rows, every status walked", async () => {
      assert.equal((await walk("metadata", 7)).purged, due);
      assert.equal((await walk("metadata", 100)).purged, 0);
      const left = await store.countPurgeable({ content: cutoffs, metadata: cutoffs });
      assert.deepEqual(left, { content: 0, metadata: 0 });
    });
  });
}
