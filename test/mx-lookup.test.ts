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
import { DnsClient } from "../src/dns/dns-client.js";
import { DnsTemporaryError, MxLookup } from "../src/dns/mx.js";
import { createResolver, type DnsServer, parseDnsServer } from "../src/dns/resolver.js";
import { startTestDns, type TestDns } from "./helpers/dns-server.js";

describe("MX lookup (RFC 5321 5.1) against a real DNS server", () => {
  let dns: TestDns;
  let now = 1_000_000;
  const lookup = (random = Math.random) => {
    const servers = [parseDnsServer(dns.servers) as DnsServer];
    const quick = { timeoutMs: 300, tries: 1 };
    return new MxLookup(new DnsClient(servers, quick), createResolver(servers, quick), {
      clock: () => now,
      random,
    });
  };

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

  test("answers are cached for their TTL, and lookups under way are shared", async () => {
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
    assert.equal(asked(), first + 2, "the MX answer lasts its own TTL (300 s)");
  });
});

describe("how long MX answers are kept, and which DNS server answers (dns-client.ts)", () => {
  let dns: TestDns;
  let other: TestDns;
  let now = 1_000_000;
  const quick = { timeoutMs: 300, tries: 1 };
  const serverOf = (test: TestDns) => parseDnsServer(test.servers) as DnsServer;
  const lookup = (options: { minTtlMs?: number; servers?: DnsServer[] } = {}) => {
    const servers = options.servers ?? [serverOf(dns)];
    return new MxLookup(new DnsClient(servers, quick), createResolver(servers, quick), {
      clock: () => now,
      minTtlMs: options.minTtlMs,
    });
  };
  const asked = (test: TestDns, question: string) => test.queries.filter((q) => q === question).length;

  before(async () => {
    dns = await startTestDns();
    other = await startTestDns();
  });
  after(async () => {
    await dns?.close();
    await other?.close();
  });

  test("an MX answer lasts the least TTL of its records; then it is asked again", async () => {
    dns.set("short.example", [
      { type: "MX", exchange: "mx1.short.example", priority: 10, ttl: 60 },
      { type: "MX", exchange: "mx2.short.example", priority: 20, ttl: 30 },
    ]);
    const mx = lookup();
    await mx.route("short.example");
    now += 29_000;
    await mx.route("short.example");
    assert.equal(asked(dns, "short.example MX"), 1, "still within the 30 s TTL");
    now += 2_000;
    dns.set("short.example", [{ type: "MX", exchange: "moved.short.example", priority: 10, ttl: 30 }]);
    const route = await mx.route("short.example");
    assert.equal(asked(dns, "short.example MX"), 2, "asked again after 30 s");
    assert.deepEqual(route, {
      kind: "hosts",
      hosts: [{ name: "moved.short.example", preference: 10 }],
      implicit: false,
    });
  });

  test("TTLs are kept within bounds: 5 s by default at least (MAILROOM_DNS_MIN_TTL_MS), 1 hour at most", async () => {
    dns.set("zero.example", [{ type: "MX", exchange: "mx.zero.example", priority: 10, ttl: 0 }]);
    dns.set("week.example", [{ type: "MX", exchange: "mx.week.example", priority: 10, ttl: 604_800 }]);
    const mx = lookup();
    await mx.route("zero.example");
    await mx.route("week.example");
    now += 4_000;
    await mx.route("zero.example");
    assert.equal(asked(dns, "zero.example MX"), 1, "a 0 TTL is kept for the 5 s floor");
    now += 2_000;
    await mx.route("zero.example");
    assert.equal(asked(dns, "zero.example MX"), 2);
    now += 3_600_000 - 6_000 - 1;
    await mx.route("week.example");
    assert.equal(asked(dns, "week.example MX"), 1, "still within the hour");
    now += 2;
    await mx.route("week.example");
    assert.equal(asked(dns, "week.example MX"), 2, "a week-long TTL lasts an hour");

    // With the floor lowered (as a test server does), a 1 s TTL is a 1 s TTL.
    dns.set("second.example", [{ type: "MX", exchange: "mx.second.example", priority: 10, ttl: 1 }]);
    const quickMx = lookup({ minTtlMs: 0 });
    await quickMx.route("second.example");
    now += 1_001;
    await quickMx.route("second.example");
    assert.equal(asked(dns, "second.example MX"), 2);
  });

  test("a negative answer lasts its SOA's TTL or MINIMUM, the lesser (RFC 2308); 5 minutes without an SOA", async () => {
    dns.set("no-mx.example", [{ type: "A", address: "127.0.0.7" }]);
    const mx = lookup();
    dns.negativeSoa({ ttl: 120, minimum: 20 });
    try {
      assert.deepEqual(await mx.route("gone.example"), { kind: "no-domain" });
      assert.equal((await mx.route("no-mx.example")).kind, "hosts");
    } finally {
      dns.negativeSoa(undefined);
    }
    now += 19_000;
    await mx.route("gone.example");
    await mx.route("no-mx.example");
    assert.equal(asked(dns, "gone.example MX"), 1);
    assert.equal(asked(dns, "no-mx.example MX"), 1);
    now += 2_000;
    // NXDOMAIN and NODATA alike, asked again after 20 s; this time the answers carry no SOA.
    await mx.route("gone.example");
    await mx.route("no-mx.example");
    assert.equal(asked(dns, "gone.example MX"), 2);
    assert.equal(asked(dns, "no-mx.example MX"), 2);
    now += 299_000;
    await mx.route("gone.example");
    assert.equal(asked(dns, "gone.example MX"), 2, "no SOA: kept 5 minutes");
    now += 2_000;
    await mx.route("gone.example");
    assert.equal(asked(dns, "gone.example MX"), 3);
  });

  test("servers are asked in order: the next when one fails or is silent; all failing is temporary", async () => {
    for (const test of [dns, other]) {
      test.set("order.example", [{ type: "MX", exchange: "mx.order.example", priority: 10 }]);
    }
    const servers = [serverOf(dns), serverOf(other)];
    await lookup({ servers }).route("order.example");
    assert.deepEqual([asked(dns, "order.example MX"), asked(other, "order.example MX")], [1, 0]);
    for (const failure of ["SERVFAIL", "REFUSED", "TIMEOUT"] as const) {
      dns.fail("order.example", failure);
      const route = await lookup({ servers }).route("order.example");
      assert.equal(route.kind, "hosts", failure);
    }
    assert.deepEqual([asked(dns, "order.example MX"), asked(other, "order.example MX")], [4, 3]);
    other.fail("order.example", "SERVFAIL");
    await assert.rejects(lookup({ servers }).route("order.example"), (error) => {
      assert.ok(error instanceof DnsTemporaryError);
      assert.equal(error.code, "ESERVFAIL");
      return true;
    });
    dns.fail("order.example", undefined);
    other.fail("order.example", undefined);
  });

  test("an answer too big for a UDP datagram is asked again over TCP", async () => {
    const names = Array.from({ length: 20 }, (_, i) => `a-rather-long-mx-host-name-${i}.big.example`);
    dns.set(
      "big.example",
      names.map((exchange, i) => ({ type: "MX", exchange, priority: i, ttl: 60 })),
    );
    const route = await lookup().route("big.example");
    assert.equal(route.kind, "hosts");
    if (route.kind !== "hosts") return;
    assert.deepEqual(
      route.hosts.map((h) => h.name),
      names,
    );
    assert.equal(asked(dns, "big.example MX"), 2, "once over UDP (truncated), once over TCP");
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
