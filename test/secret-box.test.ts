import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { describe, test } from "node:test";
import { ConfigError, loadConfig } from "../src/config/config.js";
import { parseSecretKey, SealedSecretError, SecretBox } from "../src/domain/secret-box.js";
import { SECRET_KEY_FILE } from "../src/services/secret-key.js";
import { startMailroom } from "./helpers/mailroom.js";
import { storeVariants } from "./helpers/stores.js";

const key = () => randomBytes(32);

describe("secret box (unit)", () => {
  test("what it seals, it opens; each sealing differs (random IV) and says its format", () => {
    const box = new SecretBox(key());
    const a = box.seal("whsec_abc");
    const b = box.seal("whsec_abc");
    assert.notEqual(a, b);
    assert.match(a, /^v1:[A-Za-z0-9_-]+$/);
    assert.ok(!a.includes("whsec_abc"));
    assert.equal(box.open(a), "whsec_abc");
    assert.equal(box.open(b), "whsec_abc");
    assert.equal(box.open(box.seal("")), "");
  });

  test("a tampered sealed text is refused, whichever byte changed", () => {
    const box = new SecretBox(key());
    const sealed = box.seal("whsec_secret-value");
    const bytes = Buffer.from(sealed.slice(3), "base64url");
    for (let i = 0; i < bytes.length; i++) {
      const changed = Buffer.from(bytes);
      changed[i] = (changed[i] as number) ^ 0x01;
      assert.throws(() => box.open(`v1:${changed.toString("base64url")}`), SealedSecretError, `byte ${i}`);
    }
    assert.throws(() => box.open(sealed.slice(0, -4)), SealedSecretError, "truncated");
    assert.throws(() => box.open(`v1:${bytes.subarray(0, 20).toString("base64url")}`), SealedSecretError);
    assert.throws(() => box.open(`v9:${sealed.slice(3)}`), SealedSecretError, "unknown version");
  });

  test("another key or another context does not open it", () => {
    const sealed = new SecretBox(key()).seal("whsec_x", "webhook:WH1");
    assert.throws(() => new SecretBox(key()).open(sealed, "webhook:WH1"), SealedSecretError);
    const box = new SecretBox(Buffer.alloc(32, 7).map((_, i) => i));
    const bound = box.seal("whsec_x", "webhook:WH1");
    assert.equal(box.open(bound, "webhook:WH1"), "whsec_x");
    assert.throws(() => box.open(bound, "webhook:WH2"), SealedSecretError);
    assert.throws(() => box.open(bound), SealedSecretError);
  });

  test("keys: hex of 32+ bytes, base64 and base64url of 32+ bytes; short or non-random keys refused", () => {
    const bytes = key();
    assert.deepEqual(parseSecretKey(bytes.toString("hex")), bytes);
    assert.deepEqual(parseSecretKey(` ${bytes.toString("hex").toUpperCase()}\n`), bytes);
    assert.deepEqual(parseSecretKey(bytes.toString("base64")), bytes);
    assert.deepEqual(parseSecretKey(bytes.toString("base64url")), bytes);
    const long = randomBytes(48);
    assert.deepEqual(parseSecretKey(long.toString("hex")), long);
    assert.throws(() => parseSecretKey(randomBytes(16).toString("hex")), /64 or more hex characters/);
    assert.throws(() => parseSecretKey(randomBytes(31).toString("base64")), /base64/);
    assert.throws(() => parseSecretKey("0".repeat(64)), /does not look random/);
    assert.throws(() => parseSecretKey("correct horse battery staple, but not a key"), /64 or more hex/);
    assert.throws(() => new SecretBox(randomBytes(16)), /32 bytes/);
  });

  test("MAILROOM_SECRET_KEY is checked at start, and the error never repeats the value", () => {
    const bad = `${"ab".repeat(20)}`;
    assert.throws(
      () => loadConfig({ MAILROOM_SECRET_KEY: bad }),
      (error: unknown) =>
        error instanceof ConfigError &&
        error.message.startsWith("MAILROOM_SECRET_KEY must be 64 or more hex characters") &&
        !error.message.includes(bad),
    );
    const good = key().toString("hex");
    assert.equal(loadConfig({ MAILROOM_SECRET_KEY: good }).secretKey, good);
  });
});

for (const variant of await storeVariants()) {
  describe(`secret key at start (${variant.kind})`, { skip: variant.skip }, () => {
    test("without MAILROOM_SECRET_KEY the first start writes secret.key (0600); the same data dir starts again", async () => {
      const first = await startMailroom({ store: variant.kind, keepData: true });
      try {
        const path = join(first.dataDir, SECRET_KEY_FILE);
        assert.equal((await stat(path)).mode & 0o777, 0o600);
        const text = await readFile(path, "utf8");
        assert.match(text, /^[0-9a-f]{64}\n$/);
        await first.close();
        const again = await startMailroom({
          store: variant.kind,
          dataDir: first.dataDir,
          databaseUrl: first.databaseUrl,
          admin: first.admin,
          keepData: true,
        });
        await again.close();
        assert.equal(await readFile(path, "utf8"), text, "the key file is kept, not replaced");
      } finally {
        await first.close();
        await first.removeData();
      }
    });

    test("a process whose key differs from the one the database was first used with refuses to start", async () => {
      const keyA = key().toString("hex");
      const first = await startMailroom({
        store: variant.kind,
        keepData: true,
        env: { MAILROOM_SECRET_KEY: keyA },
      });
      try {
        await first.close();
        const restart = (env: Record<string, string>) =>
          startMailroom({
            store: variant.kind,
            dataDir: first.dataDir,
            databaseUrl: first.databaseUrl,
            admin: first.admin,
            keepData: true,
            env,
          });
        await assert.rejects(
          restart({ MAILROOM_SECRET_KEY: key().toString("hex") }),
          (error: unknown) =>
            error instanceof ConfigError &&
            /not the one this database's secrets were sealed with/.test(error.message) &&
            !error.message.includes(keyA),
        );
        // Without the setting, the data dir's generated file is another key again: refused too.
        await assert.rejects(restart({}), /not the one this database's secrets were sealed with/);
        const same = await restart({ MAILROOM_SECRET_KEY: keyA });
        await same.close();
      } finally {
        await first.removeData();
      }
    });
  });
}
