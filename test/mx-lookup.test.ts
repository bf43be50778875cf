import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  DomainConnections,
  DomainGate,
  meansSlowDown,
  parseDomainLimit,
  parseDomainRate,
} from "../src/delivery/mx/domain-gate.js";
import { mxMatches, parsePolicy } from "../src/delivery/mx/mta-sts.js";
import { DnsTemporaryError, MxLookup } from "../src/dns/mx.js";
import { createResolver, parseDnsServer } from "../src/dns/resolver.js";
import { startTestDns, type TestDns } from "./helpers/dns-server.js";

describe("MX lookup (RFC 5321 5.1) against a real DNS server", () => {
  let dns: TestDns;
  let now = 1_000_000;
  const lookup = (random = Math.random) =>
    new MxLookup(createResolver([parseDnsServer(dns.servers) as never], { timeoutMs: 300, tries: 1 }), {
      clock: () => now,
      random,
    });

  before(async () => {
    dns = await startTestDns();
  });
  after(() => dns?.close());

  test("hosts by preference; equal preferences in random order", async () => {
    dns.set("pref.example", [
      { type: "MX", exchange: "c.pref.example", priority: 20 },
      { type: "MX", exchange: "a.pref.example", priority: 10 },
      { type: "MX", exchange: "b.pref.example", priority: 10 },
    ]);
    const seen = new Set<string>();
    for (const draw of [0.1, 0.9]) {
      let n = 0;
      // The first host drawn gets `draw`, the others the opposite: both orders of the tie show up.
      const route = await lookup(() => (n++ === 1 ? draw : 1 - draw)).route("pref.example");
      assert.equal(route.kind, "hosts");
      if (route.kind !== "hosts") return;
      assert.equal(route.implicit, false);
      assert.equal(route.hosts[2]?.name, "c.pref.example");
      seen.add(route.hosts.map((h) => h.name).join(" "));
    }
    assert.deepEqual([...seen].sort(), [
      "a.pref.example b.pref.example c.pref.example",
      "b.pref.example a.pref.example c.pref.example",
    ]);
  });

  test("no MX: the domain itself (implicit MX); NXDOMAIN: no domain; '.': null MX", async () => {
    dns.set("bare.example", [{ type: "A", address: "127.0.0.7" }]);
    dns.set("null.example", [{ type: "MX", exchange: ".", priority: 0 }]);
    const mx = lookup();
    assert.deepEqual(await mx.route("bare.example"), {
      kind: "hosts",
      hosts: [{ name: "bare.example", preference: 0 }],
      implicit: true,
    });
    assert.deepEqual(await mx.route("nowhere.example"), { kind: "no-domain" });
    assert.deepEqual(await mx.route("null.example"), { kind: "null-mx" });
    assert.deepEqual(await mx.addresses("bare.example"), ["127.0.0.7"]);
  });

  test("SERVFAIL and silence are temporary, and not cached", async () => {
    dns.set("flaky.example", [{ type: "MX", exchange: "mx.flaky.example", priority: 5 }]);
    dns.fail("flaky.example", "SERVFAIL");
    const mx = lookup();
    await assert.rejects(mx.route("flaky.example"), DnsTemporaryError);
    dns.fail("flaky.example", "TIMEOUT");
    await assert.rejects(mx.route("flaky.example"), DnsTemporaryError);
    dns.fail("flaky.example", undefined);
    const route = await mx.route("flaky.example");
    assert.equal(route.kind, "hosts");
  });

  test("answers are cached (addresses for their TTL), and lookups under way are shared", async () => {
    dns.set("cached.example", [{ type: "MX", exchange: "mx.cached.example", priority: 1 }]);
    dns.set("mx.cached.example", [{ type: "A", address: "127.0.0.9", ttl: 30 }]);
    const mx = lookup();
    const asked = () => dns.queries.filter((q) => q.includes("cached.example")).length;
    await Promise.all([mx.route("cached.example"), mx.route("cached.example")]);
    await mx.addresses("mx.cached.example");
    const first = asked();
    assert.equal(first, 3, dns.queries.join(", "));
    await mx.route("cached.example");
    await mx.addresses("mx.cached.example");
    assert.equal(asked(), first);
    now += 31_000;
    await mx.addresses("mx.cached.example");
    assert.equal(asked(), first + 2, "the address was asked again (A and AAAA) after its TTL");
    await mx.route("cached.example");
    assert.equal(asked(), first + 2, "the MX answer lasts MX_CACHE_MS");
  });
});

describe("domain pacing (MAILROOM_DOMAIN_RATES, slow-down back-off)", () => {
  test("rates are read as domain=count/unit; anything else is refused", () => {
    assert.deepEqual(parseDomainRate(" Gmail.com=600/h"), {
      domain: "gmail.com",
      count: 600,
      periodMs: 3_600_000,
    });
    assert.deepEqual(parseDomainRate("example.com=10/m"), {
      domain: "example.com",
      count: 10,
      periodMs: 60_000,
    });
    assert.throws(() => parseDomainRate("example.com=10"), /domain=count\/unit/);
    assert.throws(() => parseDomainRate("example.com=0/m"), /domain=count\/unit/);
  });

  test("over the rate each message gets the next slot, kept for it", () => {
    let now = 0;
    const gate = new DomainGate([parseDomainRate("r.example=60/m")], 1000, () => now);
    assert.deepEqual(gate.admit("r.example", "m1"), { go: true });
    assert.deepEqual(gate.admit("r.example", "m2"), { go: false, until: 1000, why: "rate" });
    assert.deepEqual(gate.admit("r.example", "m3"), { go: false, until: 2000, why: "rate" });
    assert.deepEqual(gate.admit("other.example", "m4"), { go: true });
    now = 1000;
    // A newcomer does not take m2's slot; m2 gets it when it comes back.
    assert.deepEqual(gate.admit("r.example", "m5"), { go: false, until: 3000, why: "rate" });
    assert.deepEqual(gate.admit("r.example", "m2"), { go: true });
    // m3 early is told the same time again.
    assert.deepEqual(gate.admit("r.example", "m3"), { go: false, until: 2000, why: "rate" });
  });

  test("a slow-down backs the whole domain off, doubling, until it takes a message", () => {
    let now = 0;
    const gate = new DomainGate([], 1000, () => now);
    assert.equal(gate.slowDown("s.example"), 1000);
    assert.deepEqual(gate.admit("s.example", "a"), { go: false, until: 1000, why: "backoff" });
    now = 1000;
    assert.deepEqual(gate.admit("s.example", "a"), { go: true });
    assert.equal(gate.slowDown("s.example"), 3000);
    gate.tookOne("s.example");
    assert.deepEqual(gate.admit("s.example", "b"), { go: true });
    assert.ok(meansSlowDown(421, "421 4.7.0 busy"));
    assert.ok(meansSlowDown(451, "451 4.7.1 rate limited"));
    assert.ok(!meansSlowDown(451, "451 4.3.0 try later"));
    assert.ok(!meansSlowDown(450, "450 4.7.1 greylisted"));
  });
});

describe("MTA-STS policies (RFC 8461)", () => {
  test("a policy file is read field by field; an invalid one is no policy", () => {
    const policy = parsePolicy(
      "version: STSv1\r\nmode: enforce\r\nmx: mx1.example.com\r\nmx: *.Example.net\r\nmax_age: 604800\r\n",
    );
    assert.deepEqual(policy, {
      mode: "enforce",
      mx: ["mx1.example.com", "*.example.net"],
      maxAgeMs: 604_800_000,
    });
    assert.equal(parsePolicy("version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 1\n"), undefined);
    assert.equal(parsePolicy("version: STSv1\nmode: enforce\nmax_age: 1\n"), undefined);
    assert.equal(parsePolicy("version: STSv1\nmode: sometimes\nmx: a.example\nmax_age: 1\n"), undefined);
    assert.equal(parsePolicy("version: STSv1\nmode: enforce\nmx: a.example\n"), undefined);
  });

  test("mx patterns: exact names, and a wildcard for one label only", () => {
    const policy = { mode: "enforce" as const, mx: ["mx1.example.com", "*.example.net"], maxAgeMs: 1000 };
    assert.ok(mxMatches(policy, "MX1.example.com."));
    assert.ok(mxMatches(policy, "a.example.net"));
    assert.ok(!mxMatches(policy, "a.b.example.net"));
    assert.ok(!mxMatches(policy, "example.net"));
    assert.ok(!mxMatches(policy, "mx2.example.com"));
  });
});

describe("connections per domain (MAILROOM_DOMAIN_CONNECTIONS)", () => {
  test("over the limit a transaction waits for one to end, in order; other domains are not limited", async () => {
    assert.deepEqual(parseDomainLimit(" Example.com=2"), { domain: "example.com", connections: 2 });
    assert.throws(() => parseDomainLimit("example.com=0"), /domain=connections/);
    const slots = new DomainConnections([parseDomainLimit("one.example=1")]);
    const first = slots.enter("one.example");
    assert.equal(typeof first, "function");
    const order: string[] = [];
    const second = Promise.resolve(slots.enter("one.example")).then((leave) => {
      order.push("second");
      return leave;
    });
    const third = Promise.resolve(slots.enter("one.example")).then((leave) => {
      order.push("third");
      return leave;
    });
    assert.equal(typeof slots.enter("other.example"), "function");
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(order, [], "both wait while the first is in");
    (first as () => void)();
    (await second)();
    (await third)();
    assert.deepEqual(order, ["second", "third"]);
  });
});
