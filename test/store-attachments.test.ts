import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import BetterSqlite3 from "better-sqlite3";
import type { BlobRow, MailStore } from "../src/store/types.js";
import { adminQuery } from "./helpers/postgres.js";
import { emailRow, insertAccount } from "./helpers/store-rows.js";
import { openTestStore, storeVariants, type TestStore } from "./helpers/stores.js";

function blob(text: string): BlobRow {
  const content = Buffer.from(text);
  return { sha256: createHash("sha256").update(content).digest("hex"), size: content.length, content };
}

for (const variant of await storeVariants()) {
  describe(`store: attachment bytes and tags (${variant.kind})`, { skip: variant.skip }, () => {
    let env: TestStore;
    let store: MailStore;
    let account: string;
    before(async () => {
      env = await openTestStore(variant.kind);
      store = env.store;
      account = await insertAccount(store, "files@example.org");
    });
    after(async () => {
      await env?.cleanup();
    });

    /** The rows of attachment_blobs, read straight from the database. */
    async function blobRows(): Promise<number> {
      if (env.kind === "postgres") {
        const rows = await adminQuery<{ n: string }>(
          `select count(*) as n from ${env.schema}.attachment_blobs`,
        );
        return Number(rows[0]?.n);
      }
      const db = new BetterSqlite3(join(env.location.dataDir, "mailroom.db"), { readonly: true });
      try {
        return (db.prepare("select count(*) as n from attachment_blobs").get() as { n: number }).n;
      } finally {
        db.close();
      }
    }

    test("identical bytes are stored once, in one batch and across batches; the bytes read back", async () => {
      const shared = blob("the same invoice, attached to three messages");
      const other = blob("another file");
      const before = await blobRows();
      // Two in one group commit (accepted together), one later on its own.
      await Promise.all([
        store.acceptEmail(emailRow(account), null, { tags: [], blobs: [shared] }),
        store.acceptEmail(emailRow(account), null, { tags: [], blobs: [shared, other] }),
      ]);
      await store.acceptEmail(emailRow(account), null, { tags: [], blobs: [shared] });
      assert.equal((await blobRows()) - before, 2, "two distinct contents, two rows");
      const read = await store.findBlobs([shared.sha256, other.sha256, "0".repeat(64)]);
      assert.equal(read.size, 2, "unknown digests are left out");
      assert.ok(Buffer.from(read.get(shared.sha256) as Uint8Array).equals(shared.content as Buffer));
    });

    test("tags filter the list, all of them at once, within the account only", async () => {
      const other = await insertAccount(store, "other-tags@example.org");
      const tagged = emailRow(account);
      const tag = (message_sid: string, account_sid: string, name: string, value: string) => ({
        message_sid,
        account_sid,
        name,
        value,
      });
      await store.acceptEmail(tagged, null, {
        tags: [tag(tagged.sid, account, "campaign", "spring"), tag(tagged.sid, account, "tier", "gold")],
        blobs: [],
      });
      const elsewhere = emailRow(other);
      await store.acceptEmail(elsewhere, null, {
        tags: [tag(elsewhere.sid, other, "campaign", "spring")],
        blobs: [],
      });
      const both = await store.listEmails(
        {
          accountSid: account,
          tags: [
            ["campaign", "spring"],
            ["tier", "gold"],
          ],
        },
        0,
        10,
      );
      assert.deepEqual(
        both.rows.map((r) => r.sid),
        [tagged.sid],
      );
      const wrongValue = await store.listEmails({ accountSid: account, tags: [["tier", "silver"]] }, 0, 10);
      assert.equal(wrongValue.total, 0);
      const theirs = await store.listEmails({ accountSid: other, tags: [["campaign", "spring"]] }, 0, 10);
      assert.deepEqual(
        theirs.rows.map((r) => r.sid),
        [elsewhere.sid],
      );
    });
  });
}
