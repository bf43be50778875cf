import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { ConfigError, loadConfig } from "../src/config/config.js";
import { AuthThrottle, addressKey } from "../src/http/auth-throttle.js";
import {
  API,
  type ApiResponse,
  type Credentials,
  request,
  startMailroom,
  type TestServer,
} from "./helpers/mailroom.js";
import { waitFor } from "./helpers/wait.js";

const unknownSid = () => `AC${randomBytes(16).toString("hex")}`;
const wrongToken = () => randomBytes(16).toString("hex");

/** One authenticated GET of the account, from `address` (through the trusted proxy's X-Forwarded-For). */
function getAccount(server: TestServer, as: Credentials | { user: string; token: string }, address?: string) {
  const sid = "sid" in as ? as.sid : as.user;
  return request(server, "GET", `${API}/Accounts/${sid}.json`, {
    auth: as,
    headers: address ? { "x-forwarded-for": address } : {},
  });
}

function assertThrottled(response: ApiResponse, maxSeconds: number) {
  assert.equal(response.status, 429, response.text);
  assert.equal(response.json.code, 10012);
  assert.equal(response.headers.get("x-mailroom-error-code"), "10012");
  const retryAfter = Number(response.headers.get("retry-after"));
  assert.ok(retryAfter >= 1 && retryAfter <= maxSeconds, `Retry-After: ${retryAfter}`);
}

describe("failed authentications are throttled per address and per user name", () => {
  let server: TestServer;
  before(async () => {
    server = await startMailroom({
      env: {
        MAILROOM_AUTH_MAX_FAILURES: "5",
        MAILROOM_AUTH_LOCKOUT_MS: "60000",
        MAILROOM_AUTH_USER_LOCKOUT_MS: "5000",
        // The test plays many clients through X-Forwarded-For, as a load balancer would send it.
        MAILROOM_TRUST_PROXY: "loopback",
      },
    });
  });
  after(async () => {
    await server?.close();
  });

  test("an address that keeps failing is locked out, whatever it sends; other addresses are not", async () => {
    const user = await server.createAccount("address-lockout@example.org", server.admin.sid);
    const attacker = "198.51.100.1";
    for (let i = 0; i < 5; i++) {
      const response = await getAccount(server, { user: unknownSid(), token: wrongToken() }, attacker);
      assert.equal(response.status, 401, `failure ${i + 1} is still a plain 401`);
    }
    assertThrottled(await getAccount(server, { user: unknownSid(), token: wrongToken() }, attacker), 60);
    assertThrottled(await getAccount(server, user, attacker), 60);
    assert.equal((await getAccount(server, user, "198.51.100.2")).status, 200);
  });

  test("a user name failing from many addresses: its established clients keep working, new ones wait a moment", async () => {
    const victim = await server.createAccount("user-lockout@example.org", server.admin.sid);
    const home = "203.0.113.7";
    assert.equal((await getAccount(server, victim, home)).status, 200);
    // A botnet: one guess per address, so no address reaches its own limit.
    for (let i = 0; i < 5; i++) {
      const guess = await getAccount(server, { sid: victim.sid, token: wrongToken() }, `192.0.2.${10 + i}`);
      assert.equal(guess.status, 401);
    }
    assertThrottled(await getAccount(server, { sid: victim.sid, token: wrongToken() }, "192.0.2.99"), 5);
    assertThrottled(await getAccount(server, victim, "203.0.113.8"), 5);
    assert.equal(
      (await getAccount(server, victim, home)).status,
      200,
      "the user's own client is not locked out",
    );
    await waitFor(
      "the short user lockout to end",
      async () => (await getAccount(server, victim, "203.0.113.8")).status === 200,
    );
  });

  test("X-Forwarded-For from a peer that is not a trusted proxy changes nothing", async () => {
    const plain = await startMailroom({ env: { MAILROOM_AUTH_MAX_FAILURES: "3" } });
    try {
      for (let i = 0; i < 3; i++) {
        const response = await getAccount(plain, { user: unknownSid(), token: wrongToken() }, `192.0.2.${i}`);
        assert.equal(response.status, 401);
      }
      assertThrottled(await getAccount(plain, plain.admin, "192.0.2.200"), 60);
    } finally {
      await plain.close();
    }
  });

  test("MAILROOM_AUTH_MAX_FAILURES=0 turns throttling off", async () => {
    const open = await startMailroom({ env: { MAILROOM_AUTH_MAX_FAILURES: "0" } });
    try {
      for (let i = 0; i < 30; i++) {
        assert.equal((await getAccount(open, { sid: open.admin.sid, token: wrongToken() })).status, 401);
      }
      assert.equal((await getAccount(open, open.admin)).status, 200);
    } finally {
      await open.close();
    }
  });
});

describe("the throttle's memory and settings", () => {
  test("names and addresses cycled by an attacker do not grow it beyond its bound", () => {
    const throttle = new AuthThrottle(
      { maxFailures: 3, windowMs: 60_000, addressLockoutMs: 60_000, userLockoutMs: 5000 },
      100,
    );
    const now = 1_700_000_000_000;
    for (let i = 0; i < 20_000; i++) {
      const address = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
      throttle.failed(`AC${i.toString(16).padStart(32, "0")}`, address, now + i);
      throttle.succeeded(`user${i}@example.org`, address, now + i);
    }
    assert.ok(throttle.size <= 300, `holds ${throttle.size} records`);
    // The newest keep working: the last address, three failures in, is locked.
    throttle.failed("x@example.org", "10.0.78.31", now + 20_001);
    throttle.failed("x@example.org", "10.0.78.31", now + 20_002);
    assert.ok(throttle.addressWait("10.0.78.31", now + 20_003) > 0);
  });

  test("IPv6 clients count by their /64; IPv4-mapped ones as IPv4", () => {
    assert.equal(addressKey("2001:db8:1:2:aaaa::1"), addressKey("2001:db8:1:2:ffff:1:2:3"));
    assert.notEqual(addressKey("2001:db8:1:2::1"), addressKey("2001:db8:1:3::1"));
    assert.equal(addressKey("2001:db8::1"), "2001:db8:0:0::/64");
    assert.equal(addressKey("::1"), "0:0:0:0::/64");
    assert.equal(addressKey("::ffff:192.0.2.1"), "192.0.2.1");
    assert.equal(addressKey("fe80::1%eth0"), "fe80:0:0:0::/64");
  });

  test("bad settings stop the start with a message naming them", () => {
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ MAILROOM_AUTH_MAX_FAILURES: "-1" }, /MAILROOM_AUTH_MAX_FAILURES must be a whole number/],
      [{ MAILROOM_AUTH_FAILURE_WINDOW_MS: "10" }, /MAILROOM_AUTH_FAILURE_WINDOW_MS must be between 1000/],
      [{ MAILROOM_AUTH_LOCKOUT_MS: "soon" }, /MAILROOM_AUTH_LOCKOUT_MS must be a whole number/],
      [{ MAILROOM_AUTH_USER_LOCKOUT_MS: "99999999" }, /MAILROOM_AUTH_USER_LOCKOUT_MS must be between/],
      [{ MAILROOM_MAX_SUBACCOUNTS: "lots" }, /MAILROOM_MAX_SUBACCOUNTS must be a whole number/],
      [{ MAILROOM_TRUST_PROXY: "10.0.0.0/33" }, /MAILROOM_TRUST_PROXY must be comma-separated IP addresses/],
      [{ MAILROOM_TRUST_PROXY: "lb.internal" }, /got "lb.internal"/],
    ];
    for (const [env, message] of cases) {
      assert.throws(
        () => loadConfig(env),
        (error: unknown) => error instanceof ConfigError && message.test(error.message),
      );
    }
    assert.deepEqual(loadConfig({ MAILROOM_TRUST_PROXY: "10.0.0.0/8, ::1, loopback" }).trustProxy, [
      "10.0.0.0/8",
      "::1",
      "loopback",
    ]);
  });
});
