import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { newSid } from "../src/domain/ids.js";
import type { AccountCreateChecks, MailStore, NewAccount } from "../src/store/types.js";
import { T0 } from "./helpers/store-rows.js";
import { openTestStore, storeVariants, type TestStore } from "./helpers/stores.js";

function account(email: string, parent: string | null, fields: Partial<NewAccount> = {}): NewAccount {
  return {
    sid: newSid("AC"),
    parent_sid: parent,
    email_address: email,
    friendly_name: email,
    type: "Full",
    status: "active",
    role: "Developer",
    auth_token_hash: "not-a-real-hash",
    password_hash: null,
    date_created: T0,
    date_updated: T0,
    ...fields,
  };
}

const API_CREATE: AccountCreateChecks = { activeLineage: true };
const OPERATOR_CREATE: AccountCreateChecks = { activeLineage: false };

for (const variant of await storeVariants()) {
  describe(`account trees in the store (${variant.kind})`, { skip: variant.skip }, () => {
    let env: TestStore;
    let store: MailStore;
    before(async () => {
      env = await openTestStore(variant.kind);
      store = env.store;
    });
    after(async () => {
      await env?.cleanup();
    });

    async function chain(prefix: string, depth: number) {
      const rows: NewAccount[] = [];
      for (let i = 0; i < depth; i++) {
        const row = account(`${prefix}-${i}@example.org`, rows.at(-1)?.sid ?? null);
        assert.deepEqual(await store.createAccount(row, OPERATOR_CREATE), { kind: "created" });
        rows.push(row);
      }
      return rows;
    }

    test("an account's lineage in one read, nearest first, by SID or email", async () => {
      const [root, middle, leaf] = await chain("lineage", 3);
      const bySid = await store.findAccountLineage({ sid: leaf?.sid as string });
      assert.deepEqual(
        bySid.map((row) => row.sid),
        [leaf?.sid, middle?.sid, root?.sid],
      );
      assert.equal(bySid[0]?.date_created, T0, "times come back as numbers");
      const byEmail = await store.findAccountLineage({ email: "LINEAGE-1@example.org" });
      assert.deepEqual(
        byEmail.map((row) => row.sid),
        [middle?.sid, root?.sid],
      );
      assert.deepEqual(await store.findAccountLineage({ sid: newSid("AC") }), []);
    });

    test("a create is refused below a missing, inactive or closed parent, or over the limit", async () => {
      const [root, child] = await chain("checks", 2);
      const below = (email: string, parent: string) => account(email, parent);
      assert.equal(
        (await store.createAccount(below("checks-0@example.org", root?.sid as string), API_CREATE)).kind,
        "email-taken",
      );
      assert.equal(
        (await store.createAccount(below("orphan@example.org", newSid("AC")), API_CREATE)).kind,
        "parent-missing",
      );

      assert.ok(
        await store.updateOpenAccount(root?.sid as string, { status: "suspended", date_updated: T0 + 1 }),
      );
      const refused = await store.createAccount(
        below("under-suspended@example.org", child?.sid as string),
        API_CREATE,
      );
      assert.equal(refused.kind, "ancestor-inactive");
      assert.equal(refused.kind === "ancestor-inactive" && refused.ancestor.sid, root?.sid);
      const byOperator = await store.createAccount(
        below("operator-under-suspended@example.org", child?.sid as string),
        OPERATOR_CREATE,
      );
      assert.equal(byOperator.kind, "created", "the operator may create below a suspended account");
      assert.ok(
        await store.updateOpenAccount(root?.sid as string, { status: "active", date_updated: T0 + 2 }),
      );

      // root has two below it (child, and the operator's grandchild): a limit of 3 leaves room for one more.
      const limited: AccountCreateChecks = {
        activeLineage: true,
        descendantLimit: { limit: 3, exemptRole: "Administrator" },
      };
      assert.equal(
        (await store.createAccount(below("third@example.org", child?.sid as string), limited)).kind,
        "created",
      );
      const over = await store.createAccount(below("fourth@example.org", child?.sid as string), limited);
      assert.equal(over.kind, "limit-reached");
      assert.equal(
        over.kind === "limit-reached" && over.ancestor.sid,
        root?.sid,
        "counted on the topmost limited ancestor",
      );

      const admin = account("exempt-admin@example.org", null, { role: "Administrator" });
      await store.createAccount(admin, OPERATOR_CREATE);
      for (let i = 0; i < 4; i++) {
        const made = await store.createAccount(below(`exempt-${i}@example.org`, admin.sid), limited);
        assert.equal(made.kind, "created", "an exempt role's subtree is not limited");
      }
    });

    test("closing closes the whole subtree in one transaction, and is final", async () => {
      const [root, middle, leaf] = await chain("close", 3);
      const sibling = account("close-sibling@example.org", middle?.sid as string);
      await store.createAccount(sibling, OPERATOR_CREATE);
      assert.ok(
        await store.updateOpenAccount(root?.sid as string, { status: "closed", date_updated: T0 + 5 }),
      );
      for (const row of [root, middle, leaf, sibling]) {
        const read = await store.findAccountBySid(row?.sid as string);
        assert.equal(read?.status, "closed", row?.email_address);
      }
      assert.equal(
        await store.updateOpenAccount(root?.sid as string, { status: "active", date_updated: T0 + 6 }),
        false,
      );
      const below = await store.createAccount(
        account("after-close@example.org", leaf?.sid as string),
        OPERATOR_CREATE,
      );
      assert.equal(below.kind, "ancestor-inactive", "not even the operator creates below a closed account");
    });

    test("creates through one connection and a close through another: no active child below the closed account", async () => {
      const other = env.openAnother();
      for (let round = 0; round < 3; round++) {
        const [root] = await chain(`two-stores-${round}`, 1);
        const creates = Array.from({ length: 20 }, (_, i) =>
          store.createAccount(
            account(`two-stores-child-${round}-${i}@example.org`, root?.sid as string),
            API_CREATE,
          ),
        );
        const close = other.updateOpenAccount(root?.sid as string, {
          status: "closed",
          date_updated: T0 + 10,
        });
        const outcomes = await Promise.all(creates);
        assert.ok(await close);
        assert.ok(
          outcomes.every((outcome) => outcome.kind === "created" || outcome.kind === "ancestor-inactive"),
        );
        const children = await store.listSubAccounts(root?.sid as string);
        assert.equal(children.length, outcomes.filter((outcome) => outcome.kind === "created").length);
        assert.deepEqual(
          children.filter((child) => child.status !== "closed").map((child) => child.email_address),
          [],
        );
      }
    });
  });
}
