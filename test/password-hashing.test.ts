import assert from "node:assert/strict";
import { scryptSync } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { hashPassword } from "../src/domain/secrets.js";
import { API, request, startMailroom, type TestServer } from "./helpers/mailroom.js";
import { storeVariants } from "./helpers/stores.js";

describe("password hashing", () => {
  test("runs off the event loop: other work goes on while a password is hashed", async () => {
    let turns = 0;
    let spinning = true;
    const spin = () => {
      turns += 1;
      if (spinning) setImmediate(spin);
    };
    setImmediate(spin);
    // Four at once, as four clients changing passwords: each takes tens of milliseconds of CPU.
    const hashes = await Promise.all([1, 2, 3, 4].map((i) => hashPassword(`correct horse ${i}`)));
    spinning = false;
    // A synchronous scrypt returns before a single turn of the loop.
    assert.ok(turns > 4, `the event loop turned ${turns} times meanwhile`);
    hashes.forEach((stored, i) => {
      const [scheme, salt, hash] = stored.split("$");
      assert.equal(scheme, "scrypt");
      const expected = scryptSync(`correct horse ${i + 1}`, Buffer.from(salt as string, "hex"), 32);
      assert.equal(hash, expected.toString("hex"), "the same scrypt as before, salt and all");
    });
  });
});

for (const variant of await storeVariants()) {
  describe(`passwords are at most 1 KiB (${variant.kind})`, { skip: variant.skip }, () => {
    let server: TestServer;
    before(async () => {
      server = await startMailroom({ store: variant.kind });
    });
    after(async () => {
      await server?.close();
    });

    test("a longer password is refused with 400 and its own code, on create and on update", async () => {
      const huge = "x".repeat(1024 * 1024);
      const created = await request(server, "POST", `${API}/Accounts.json`, {
        auth: server.admin,
        form: { EmailAddress: "huge-password@example.org", Password: huge },
      });
      assert.equal(created.status, 400);
      assert.equal(created.json.code, 10011);
      assert.match(created.json.message, /Password is longer than 1024 bytes/);
      assert.ok(created.text.length < 500, "the answer does not echo the password");

      const account = await server.createAccount("long-password@example.org", server.admin.sid);
      // The limit is in bytes: 512 two-byte characters fit, 513 do not.
      const fits = await request(server, "POST", `${API}/Accounts/${account.sid}.json`, {
        auth: account,
        form: { Password: "é".repeat(512) },
      });
      assert.equal(fits.status, 200, fits.text);
      const over = await request(server, "POST", `${API}/Accounts/${account.sid}.json`, {
        auth: account,
        form: { Password: "é".repeat(513) },
      });
      assert.equal(over.status, 400);
      assert.equal(over.json.code, 10011);
    });
  });
}
