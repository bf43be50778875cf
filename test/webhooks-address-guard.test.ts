import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ApiError } from "../src/domain/errors.js";
import { checkWebhookUrl, guardedLookup, refusedAddressReason } from "../src/webhooks/address-guard.js";

describe("webhook address guard", () => {
  test("refuses every address class that is not public unicast, and metadata addresses", () => {
    const refused: Record<string, string> = {
      "127.0.0.1": "loopback",
      "127.255.0.9": "loopback",
      "10.1.2.3": "private",
      "172.16.0.1": "private",
      "192.168.1.1": "private",
      "169.254.1.1": "link-local",
      "169.254.169.254": "cloud metadata",
      "168.63.129.16": "cloud metadata",
      "100.64.0.1": "carrier-grade NAT",
      "0.0.0.0": "unspecified",
      "224.0.0.1": "multicast",
      "255.255.255.255": "broadcast",
      "240.0.0.1": "reserved",
      "::1": "loopback",
      "::": "unspecified",
      "fe80::1": "link-local",
      "fc00::1": "unique-local",
      "fd12:3456::1": "unique-local",
      "fd00:ec2::254": "cloud metadata",
      "ff02::1": "multicast",
      "::ffff:127.0.0.1": "loopback",
      "::ffff:7f00:1": "loopback",
      "::ffff:169.254.169.254": "cloud metadata",
      "::ffff:10.0.0.1": "private",
      "64:ff9b::a00:1": "private",
      "2002:c0a8:0101::1": "private",
      "::7f00:1": "IPv4-compatible (reserved)",
      "::808:808": "IPv4-compatible (reserved)",
      "2001:db8::1": "reserved",
    };
    for (const [address, reason] of Object.entries(refused)) {
      assert.equal(refusedAddressReason(address), reason, address);
    }
    for (const address of [
      "93.184.216.34",
      "8.8.8.8",
      "2606:4700::1111",
      "::ffff:8.8.8.8",
      "2002:0808:0808::1",
    ]) {
      assert.equal(refusedAddressReason(address), null, address);
    }
  });

  async function refusal(url: string, allowPrivate = false): Promise<ApiError> {
    const error = await checkWebhookUrl(url, { allowPrivate }).then(
      () => assert.fail(`${url} was accepted`),
      (e: unknown) => e,
    );
    assert.ok(error instanceof ApiError, String(error));
    return error;
  }

  test("checkWebhookUrl: scheme, credentials, refused and unresolvable hosts", async () => {
    assert.equal((await refusal("ftp://example.org/")).code, 14400);
    assert.equal((await refusal("not a url")).code, 14400);
    assert.equal((await refusal("https://user:pw@example.org/")).code, 14401);
    // Credentials are refused even where private addresses are allowed.
    assert.equal((await refusal("https://user@127.0.0.1/", true)).code, 14401);
    const loopback = await refusal("http://127.0.0.1:8080/hook");
    assert.equal(loopback.code, 14402);
    assert.equal(loopback.status, 400);
    assert.match(loopback.message, /127\.0\.0\.1, a loopback address/);
    assert.match(loopback.message, /MAILROOM_WEBHOOK_ALLOW_PRIVATE/);
    // The URL parser's other spellings of 127.0.0.1 and of ::1 are the same address.
    assert.equal((await refusal("http://2130706433/")).code, 14402);
    assert.equal((await refusal("http://0x7f.1/")).code, 14402);
    assert.equal((await refusal("http://[::1]/")).code, 14402);
    assert.equal((await refusal("http://[::ffff:169.254.169.254]/")).code, 14402);
    // A name is judged by what it resolves to.
    assert.equal((await refusal("http://localhost/")).code, 14402);
    assert.equal((await refusal("http://no-such-host.invalid/")).code, 14403);
    // Public literals pass without any lookup; private ones pass when allowed.
    await checkWebhookUrl("https://93.184.216.34/hook", { allowPrivate: false });
    await checkWebhookUrl("http://127.0.0.1:8080/hook", { allowPrivate: true });
  });

  test("guardedLookup refuses a name resolving to a refused address, at connect time", async () => {
    const lookup = guardedLookup(false);
    const error = await new Promise<NodeJS.ErrnoException | null>((resolve) =>
      lookup("localhost", { all: true }, (err) => resolve(err)),
    );
    assert.equal(error?.code, "EWEBHOOKADDRESS");
    assert.match(String(error?.message), /localhost resolves to .* loopback address/);
    const allowed = await new Promise<string>((resolve, reject) =>
      guardedLookup(true)("localhost", { family: 4 }, (err, address) =>
        err ? reject(err) : resolve(address as string),
      ),
    );
    assert.equal(allowed, "127.0.0.1");
  });
});
