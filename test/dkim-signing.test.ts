import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { dkimVerify } from "mailauth/lib/dkim/verify.js";
import { FAST_RETRIES, waitForFinal } from "./helpers/delivery.js";
import { startTestDns, type TestDns } from "./helpers/dns-server.js";
import {
  API,
  type Credentials,
  request,
  sendEmail,
  startMailroom,
  type TestServer,
} from "./helpers/mailroom.js";
import { SmtpSink } from "./helpers/smtp-sink.js";
import { storeVariants } from "./helpers/stores.js";
import { waitFor } from "./helpers/wait.js";

interface Rec {
  type: string;
  name: string;
  value: string;
  purpose: string;
  selector?: string;
}

/**
 * The verifier: mailauth's dkimVerify, asking the test DNS for the record Mailroom told the user to
 * publish (and nothing else: the test publishes only what the API answered).
 */
async function verify(dns: TestDns, raw: string) {
  const resolver = dns.resolver();
  const { results } = await dkimVerify(raw, {
    resolver: (name: string, type: string) => resolver.resolve(name, type),
  });
  return results.map((r) => ({
    domain: r.signingDomain,
    selector: r.selector,
    algo: r.algo,
    result: r.status.result,
  }));
}

/** Creates the domain and publishes its DKIM records (only those) in the test DNS. */
async function createDomain(
  server: TestServer,
  dns: TestDns,
  account: Credentials,
  name: string,
  form: Record<string, string> = {},
): Promise<{ sid: string; dkim: Rec[] }> {
  const created = await request(server, "POST", `${API}/Accounts/${account.sid}/Domains.json`, {
    auth: account,
    form: { DomainName: name, ...form },
  });
  assert.equal(created.status, 200, created.text);
  const dkim = (created.json.dns_records as Rec[]).filter((r) => r.purpose === "dkim");
  for (const record of dkim) dns.set(record.name, [{ type: "TXT", data: record.value }]);
  return { sid: created.json.sid, dkim };
}

async function mimeOf(server: TestServer, account: Credentials, sid: string): Promise<string> {
  const response = await request(server, "GET", `${API}/Accounts/${account.sid}/Email/Messages/${sid}/Mime`, {
    auth: account,
  });
  assert.equal(response.status, 200, response.text);
  return response.text;
}

async function sendAndWait(
  server: TestServer,
  account: Credentials,
  fields: Record<string, string>,
): Promise<string> {
  const sent = await sendEmail(server, account, fields);
  assert.equal(sent.status, 200, sent.text);
  const final = await waitForFinal(server, account, sent.json.sid);
  assert.equal(final.status, "sent");
  return sent.json.sid;
}

describe("DKIM signing in capture mode", () => {
  let dns: TestDns;
  let server: TestServer;
  let alice: Credentials;
  let aliceChild: Credentials;
  let bob: Credentials;
  let selector: string;

  before(async () => {
    dns = await startTestDns();
    server = await startMailroom({ env: { MAILROOM_DNS_SERVERS: dns.servers } });
    alice = await server.createAccount("alice@example.org", server.admin.sid);
    aliceChild = await server.createAccount("child@example.org", alice.sid);
    bob = await server.createAccount("bob@example.org", server.admin.sid);
    const domain = await createDomain(server, dns, alice, "signed.example");
    selector = domain.dkim[0]?.selector as string;
  });
  after(async () => {
    await server?.close();
    await dns?.close();
  });

  test("a message from the domain is signed, relaxed/relaxed, and verifies against the published record", async () => {
    const sid = await sendAndWait(server, alice, {
      From: "Jane <jane@signed.example>",
      To: "john@elsewhere.example",
      CC: "carol@elsewhere.example",
      Subject: "Signed — ünïcode subject",
      Body: "Hello,\r\nthis line ends with spaces   \r\n\r\n\r\n",
    });
    const raw = await mimeOf(server, alice, sid);
    assert.ok(raw.startsWith("DKIM-Signature: "), raw.slice(0, 200));
    assert.match(raw, /c=relaxed\/relaxed/);
    assert.match(raw, new RegExp(`d=signed\\.example;[\\s\\S]*s=${selector};`));
    const signedHeaders = (/;\s*h=([^;]+);/.exec(raw.replace(/\r\n\s+/g, " "))?.[1] ?? "")
      .toLowerCase()
      .split(":")
      .map((name) => name.trim());
    for (const header of [
      "from",
      "to",
      "cc",
      "subject",
      "date",
      "message-id",
      "mime-version",
      "content-type",
    ]) {
      assert.ok(signedHeaders.includes(header), `${header} is signed (h=${signedHeaders.join(":")})`);
    }
    assert.deepEqual(await verify(dns, raw), [
      { domain: "signed.example", selector, algo: "rsa-sha256", result: "pass" },
    ]);

    // Tampered body, tampered subject: the signature no longer verifies.
    const bodyAt = raw.indexOf("\r\n\r\n");
    const tampered = `${raw.slice(0, bodyAt)}\r\n\r\nPay to account 666.\r\n`;
    // mailauth says "neutral" for a body hash that does not match (RFC 6376 6.3: not a valid signature).
    const { results } = await dkimVerify(tampered, {
      resolver: (name: string, type: string) => dns.resolver().resolve(name, type),
    });
    assert.equal(results[0]?.status.result, "neutral");
    assert.equal(results[0]?.status.comment, "body hash did not verify");
    const retitled = raw.replace(/^Subject: .*$/m, "Subject: Something else");
    assert.equal((await verify(dns, retitled))[0]?.result, "fail");
  });

  test("a subdomain is signed with its parent's key (d=parent), for sub-accounts too", async () => {
    const sid = await sendAndWait(server, aliceChild, { From: "news@mail.signed.example" });
    const raw = await mimeOf(server, aliceChild, sid);
    assert.deepEqual(await verify(dns, raw), [
      { domain: "signed.example", selector, algo: "rsa-sha256", result: "pass" },
    ]);
  });

  test("no key: the message is sent unsigned; another tenant's domain does not sign for it", async () => {
    const plain = await mimeOf(
      server,
      alice,
      await sendAndWait(server, alice, { From: "jane@unsigned.example" }),
    );
    assert.doesNotMatch(plain, /DKIM-Signature/i);
    assert.match(plain, /^From: jane@unsigned\.example\r\n/m);
    const foreign = await mimeOf(server, bob, await sendAndWait(server, bob, { From: "bob@signed.example" }));
    assert.doesNotMatch(foreign, /DKIM-Signature/i);
  });

  test("rsa,ed25519: two signatures, both verify", async () => {
    await createDomain(server, dns, bob, "both.example", { DkimAlgorithms: "rsa,ed25519" });
    const raw = await mimeOf(server, bob, await sendAndWait(server, bob, { From: "bob@both.example" }));
    const results = await verify(dns, raw);
    assert.deepEqual(results.map((r) => [r.algo, r.result]).sort(), [
      ["ed25519-sha256", "pass"],
      ["rsa-sha256", "pass"],
    ]);
  });

  test("rotation: the new key signs once its record verifies", async () => {
    const domain = await createDomain(server, dns, bob, "rotating.example");
    const path = `${API}/Accounts/${bob.sid}/Domains/${domain.sid}`;
    const rotated = await request(server, "POST", `${path}/Keys.json`, { auth: bob });
    const fresh = (rotated.json.dns_records as Rec[]).find(
      (r) => r.purpose === "dkim" && r.selector !== domain.dkim[0]?.selector,
    ) as Rec;
    // Not verified yet: still the old key.
    const before = await mimeOf(
      server,
      bob,
      await sendAndWait(server, bob, { From: "bob@rotating.example" }),
    );
    assert.equal((await verify(dns, before))[0]?.selector, domain.dkim[0]?.selector);
    dns.set(fresh.name, [{ type: "TXT", data: fresh.value }]);
    await request(server, "POST", `${path}/Verify.json`, { auth: bob });
    const afterRotation = await mimeOf(
      server,
      bob,
      await sendAndWait(server, bob, { From: "bob@rotating.example" }),
    );
    assert.deepEqual(await verify(dns, afterRotation), [
      { domain: "rotating.example", selector: fresh.selector, algo: "rsa-sha256", result: "pass" },
    ]);
  });
});

describe("DKIM signing in relay mode", () => {
  let dns: TestDns;
  let sink: SmtpSink;
  let server: TestServer;
  let alice: Credentials;

  before(async () => {
    dns = await startTestDns();
    sink = await SmtpSink.start();
    server = await startMailroom({
      env: { MAILROOM_DNS_SERVERS: dns.servers, MAILROOM_SMTP_URL: sink.url, ...FAST_RETRIES },
    });
    alice = await server.createAccount("alice@example.org", server.admin.sid);
    await createDomain(server, dns, alice, "relay.example");
  });
  after(async () => {
    await server?.close();
    await sink?.stop();
    await dns?.close();
  });

  test("the relay receives a signed message that verifies, and /Mime is the same bytes", async () => {
    const sid = await sendAndWait(server, alice, { From: "Jane <jane@relay.example>", To: "x@far.example" });
    const received = sink.received.find((m) => m.raw.includes(sid)) as { raw: string };
    assert.ok(received);
    assert.equal((await verify(dns, received.raw))[0]?.result, "pass");
    assert.equal(normalize(received.raw), normalize(await mimeOf(server, alice, sid)));
  });

  test("a retry after a 4xx sends the identical signed bytes", async () => {
    let refused = 0;
    sink.rules = {
      message: (message) => {
        if (message.raw.includes("retry-me") && refused === 0) {
          refused += 1;
          return { code: 451, message: "4.3.0 try again later" };
        }
        return undefined;
      },
    };
    try {
      const sent = await sendEmail(server, alice, { From: "jane@relay.example", Subject: "retry-me" });
      const final = await waitForFinal(server, alice, sent.json.sid);
      assert.equal(final.status, "sent");
      assert.equal(final.num_attempts, 2);
      const answered = await waitFor("both DATA answers", () => {
        const both = sink.answered.filter((a) => a.raw.includes("retry-me"));
        return both.length === 2 ? both : undefined;
      });
      assert.deepEqual(
        answered.map((a) => a.code),
        [451, 250],
      );
      assert.equal(answered[0]?.raw, answered[1]?.raw);
      assert.equal((await verify(dns, answered[1]?.raw as string))[0]?.result, "pass");
      assert.equal(
        normalize(answered[1]?.raw as string),
        normalize(await mimeOf(server, alice, sent.json.sid)),
      );
    } finally {
      sink.rules = {};
    }
  });
});

describe("sending policy (MAILROOM_REQUIRE_VERIFIED_DOMAIN=1)", () => {
  let dns: TestDns;
  let server: TestServer;

  before(async () => {
    dns = await startTestDns();
    server = await startMailroom({
      env: { MAILROOM_DNS_SERVERS: dns.servers, MAILROOM_REQUIRE_VERIFIED_DOMAIN: "1" },
    });
  });
  after(async () => {
    await server?.close();
    await dns?.close();
  });

  test("a From outside the account's verified domains is 400 (16010); verified domains, their subdomains and sub-accounts pass", async () => {
    const owner = await server.createAccount("owner@example.org", server.admin.sid);
    const child = await server.createAccount("kid@example.org", owner.sid);
    const other = await server.createAccount("other@example.org", server.admin.sid);
    const refused = await sendEmail(server, owner, { From: "me@policy.example" });
    assert.equal(refused.status, 400);
    assert.equal(refused.json.code, 16010);
    assert.match(refused.json.message, /policy\.example/);

    const domain = await createDomain(server, dns, owner, "policy.example");
    // Created but not verified: still refused.
    assert.equal((await sendEmail(server, owner, { From: "me@policy.example" })).json.code, 16010);
    const verified = await request(
      server,
      "POST",
      `${API}/Accounts/${owner.sid}/Domains/${domain.sid}/Verify.json`,
      {
        auth: owner,
      },
    );
    assert.equal(verified.json.status, "verified");
    assert.equal((await sendEmail(server, owner, { From: "me@policy.example" })).status, 200);
    assert.equal((await sendEmail(server, owner, { From: "me@news.policy.example" })).status, 200);
    assert.equal((await sendEmail(server, child, { From: "kid@policy.example" })).status, 200);
    // Not a parent match: notpolicy.example is another domain.
    assert.equal((await sendEmail(server, owner, { From: "me@notpolicy.example" })).json.code, 16010);
    assert.equal((await sendEmail(server, other, { From: "x@policy.example" })).json.code, 16010);
  });
});

/** The same message as the relay received it and as stored (a trailing CRLF aside). */
function normalize(raw: string): string {
  return raw.replace(/(\r\n)+$/, "");
}

describe("DKIM signing across processes (PostgreSQL)", async () => {
  const pgSkip = (await storeVariants()).find((v) => v.kind === "postgres")?.skip ?? "no PostgreSQL variant";
  let dns: TestDns;
  let server: TestServer;
  let peer: TestServer;

  before(async () => {
    if (pgSkip) return;
    dns = await startTestDns();
    server = await startMailroom({ store: "postgres", env: { MAILROOM_DNS_SERVERS: dns.servers } });
    peer = await startMailroom({
      databaseUrl: server.databaseUrl,
      dataDir: server.dataDir,
      admin: server.admin,
      keepData: true,
      env: { MAILROOM_DNS_SERVERS: dns.servers },
    });
  });
  after(async () => {
    await peer?.close();
    await server?.close();
    await dns?.close();
  });

  test("a domain created through another process signs this process's mail within seconds", {
    skip: pgSkip,
  }, async () => {
    const account = await server.createAccount("multi@example.org", server.admin.sid);
    // This process has read the (empty) list of domains before the peer creates one.
    await sendAndWait(server, account, { From: "a@multi.example" });
    await createDomain(peer, dns, account, "multi.example");
    const signed = await waitFor(
      "a message of this process signed with the key the peer made",
      async () => {
        const raw = await mimeOf(
          server,
          account,
          await sendAndWait(server, account, { From: "a@multi.example" }),
        );
        return raw.startsWith("DKIM-Signature:") ? raw : undefined;
      },
      40_000,
    );
    assert.equal((await verify(dns, signed))[0]?.result, "pass");
  });
});

/**
 * Issue 15's "done when", end to end: with no relay, a user creates a domain, publishes the records it
 * printed, verifies it, and Mailroom delivers DKIM-signed mail to the recipient domain's MX (the sending
 * policy is on by default in mx mode, so an unverified From is refused first).
 */
describe("DKIM signing in mx mode: create, publish, verify, deliver", () => {
  let dns: TestDns;
  let mx: SmtpSink;
  let server: TestServer;
  let alice: Credentials;

  before(async () => {
    dns = await startTestDns();
    // An address of its own on loopback: the recipient domain's MX host.
    mx = await SmtpSink.start({ host: "127.0.0.42" });
    dns.set("recipient.example", [{ type: "MX", exchange: "mx.recipient.example", priority: 10 }]);
    dns.set("mx.recipient.example", [{ type: "A", address: "127.0.0.42" }]);
    server = await startMailroom({
      env: {
        MAILROOM_DELIVERY_MODE: "mx",
        MAILROOM_DNS_SERVERS: dns.servers,
        MAILROOM_MX_ALLOW_PRIVATE: "1",
        MAILROOM_MX_PORT: String(mx.port),
        MAILROOM_HOSTNAME: "mailroom.test.example",
      },
    });
    alice = await server.createAccount("alice@mx.example", server.admin.sid);
  });
  after(async () => {
    await server?.close();
    await mx?.stop();
    await dns?.close();
  });

  test("every printed record published, the domain verified, the mail signed at the recipient's MX", async () => {
    const mail = { From: "Jane <jane@direct.example>", To: "john@recipient.example", Subject: "Direct" };
    const early = await sendEmail(server, alice, mail);
    assert.equal(early.status, 400, "unverified From refused by default in mx mode");
    assert.equal(early.json.code, 16010);

    const created = await request(server, "POST", `${API}/Accounts/${alice.sid}/Domains.json`, {
      auth: alice,
      form: { DomainName: "direct.example" },
    });
    assert.equal(created.status, 200, created.text);
    for (const record of created.json.dns_records as Rec[]) {
      if (record.type === "TXT") dns.add(record.name, { type: "TXT", data: record.value });
      else if (record.type === "MX") {
        const [priority, exchange] = record.value.split(" ");
        dns.add(record.name, { type: "MX", priority: Number(priority), exchange: exchange as string });
      } else assert.fail(`a record of type ${record.type} to publish`);
    }
    const verified = await request(
      server,
      "POST",
      `${API}/Accounts/${alice.sid}/Domains/${created.json.sid}/Verify.json`,
      { auth: alice },
    );
    assert.equal(verified.json.status, "verified", verified.text);
    for (const record of verified.json.dns_records as Array<Rec & { status: string }>) {
      assert.equal(record.status, "verified", `${record.purpose} ${record.name}`);
    }

    const sid = await sendAndWait(server, alice, mail);
    await waitFor("the MX host got it", () => mx.received.length === 1, 30_000);
    const received = mx.received[0];
    assert.deepEqual(received?.to, ["john@recipient.example"]);
    const raw = received?.raw as string;
    assert.equal(raw.replace(/\r?\n$/, ""), (await mimeOf(server, alice, sid)).replace(/\r?\n$/, ""));
    assert.deepEqual(await verify(dns, raw), [
      {
        domain: "direct.example",
        selector: (created.json.dns_records as Rec[]).find((r) => r.purpose === "dkim")?.selector,
        algo: "rsa-sha256",
        result: "pass",
      },
    ]);
  });
});
