import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { createResolver, parseDnsServer } from "../src/dns/resolver.js";
import { startTestDns, type TestDns } from "./helpers/dns-server.js";

// The test DNS server other tests rely on, checked through the resolver Mailroom itself uses.
let dns: TestDns;
before(async () => {
  dns = await startTestDns();
});
after(() => dns.close());

function resolver() {
  const server = parseDnsServer(dns.servers);
  assert.ok(server);
  return createResolver([server], { timeoutMs: 500, tries: 1 });
}

test("answers MX, A, AAAA and TXT records, a long TXT record in one piece", async () => {
  const longText = `v=DKIM1; k=rsa; p=${"A".repeat(400)}`;
  dns.set("example.test", [
    { type: "MX", exchange: "mx2.example.test", priority: 20 },
    { type: "MX", exchange: "mx1.example.test", priority: 10 },
    { type: "TXT", data: "v=spf1 ip4:127.0.0.1 -all" },
  ]);
  dns.set("mx1.example.test", [
    { type: "A", address: "127.0.0.2" },
    { type: "AAAA", address: "::1" },
  ]);
  dns.set("sel._domainkey.example.test", [{ type: "TXT", data: longText }]);
  const r = resolver();
  const mx = await r.resolveMx("example.test");
  assert.deepEqual(
    mx.sort((a, b) => a.priority - b.priority),
    [
      { exchange: "mx1.example.test", priority: 10 },
      { exchange: "mx2.example.test", priority: 20 },
    ],
  );
  assert.deepEqual(await r.resolve4("mx1.example.test"), ["127.0.0.2"]);
  assert.deepEqual(await r.resolve6("mx1.example.test"), ["::1"]);
  assert.deepEqual(await r.resolveTxt("example.test"), [["v=spf1 ip4:127.0.0.1 -all"]]);
  const txt = await r.resolveTxt("sel._domainkey.example.test");
  assert.equal(txt[0]?.join(""), longText);
  assert.ok(dns.queries.includes("example.test MX"));
});

test("unknown names are NXDOMAIN; a failing name is SERVFAIL or silent", async () => {
  const r = resolver();
  await assert.rejects(r.resolveMx("nowhere.test"), { code: "ENOTFOUND" });
  dns.set("broken.test", [{ type: "A", address: "127.0.0.3" }]);
  dns.fail("broken.test", "SERVFAIL");
  await assert.rejects(r.resolve4("broken.test"), { code: "ESERVFAIL" });
  dns.fail("broken.test", "TIMEOUT");
  await assert.rejects(r.resolve4("broken.test"), { code: "ETIMEOUT" });
  dns.fail("broken.test", undefined);
  assert.deepEqual(await r.resolve4("broken.test"), ["127.0.0.3"]);
  // A name with records of other types only: no data.
  await assert.rejects(r.resolveMx("broken.test"), { code: "ENODATA" });
});

test("parseDnsServer reads host[:port] and refuses names", () => {
  assert.deepEqual(parseDnsServer("10.0.0.1"), { address: "10.0.0.1", port: 53 });
  assert.deepEqual(parseDnsServer("127.0.0.1:5353"), { address: "127.0.0.1", port: 5353 });
  assert.deepEqual(parseDnsServer("[::1]:5300"), { address: "::1", port: 5300 });
  assert.deepEqual(parseDnsServer("::1"), { address: "::1", port: 53 });
  assert.equal(parseDnsServer("dns.example.com"), undefined);
  assert.equal(parseDnsServer("127.0.0.1:99999"), undefined);
});
