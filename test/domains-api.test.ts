import assert from "node:assert/strict";
import { createPublicKey } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { loadConfig, requireVerifiedDomain } from "../src/config/config.js";
import { type DnsRecord, startTestDns, type TestDns } from "./helpers/dns-server.js";
import {
  API,
  type ApiResponse,
  type Credentials,
  request,
  startMailroom,
  type TestServer,
} from "./helpers/mailroom.js";
import { openRawDb } from "./helpers/raw-db.js";
import { storeVariants } from "./helpers/stores.js";
import { waitFor } from "./helpers/wait.js";

const DOMAIN_FIELDS = [
  "account_sid",
  "date_created",
  "date_updated",
  "dkim_keys",
  "dns_records",
  "domain_name",
  "sid",
  "status",
  "uri",
];

interface Rec {
  type: string;
  name: string;
  value: string;
  purpose: string;
  status: string;
  selector?: string;
  found?: string;
  error?: string;
}

/** The records a user publishes, as the test DNS serves them (the MX value is "preference host"). */
function publish(dns: TestDns, records: readonly Rec[]): void {
  for (const record of records) dns.set(record.name, [served(record)]);
}

function served(record: Rec): DnsRecord {
  if (record.type === "MX") {
    const [priority, exchange] = record.value.split(" ");
    return { type: "MX", priority: Number(priority), exchange: exchange as string };
  }
  return { type: "TXT", data: record.value };
}

const byPurpose = (domain: { dns_records: Rec[] }, purpose: string) =>
  domain.dns_records.filter((r) => r.purpose === purpose);

for (const variant of await storeVariants()) {
  describe(`domains resource (${variant.kind})`, { skip: variant.skip }, () => {
    let dns: TestDns;
    let server: TestServer;
    let alice: Credentials;
    let bob: Credentials;
    const logLines: Array<Record<string, unknown>> = [];
    const responses: ApiResponse[] = [];
    const domains = (account: Credentials, rest = "") => `${API}/Accounts/${account.sid}/Domains${rest}`;
    const call = async (
      account: Credentials,
      method: string,
      rest: string,
      form?: Record<string, string>,
    ): Promise<ApiResponse> => {
      const response = await request(server, method, domains(account, rest), { auth: account, form });
      responses.push(response);
      return response;
    };
    const create = (account: Credentials, name: string, extra: Record<string, string> = {}) =>
      call(account, "POST", ".json", { DomainName: name, ...extra });

    before(async () => {
      dns = await startTestDns();
      server = await startMailroom({
        store: variant.kind,
        env: {
          MAILROOM_DNS_SERVERS: dns.servers,
          MAILROOM_SPF_INCLUDE: "include:_spf.mailroom.test",
          MAILROOM_MAX_DOMAINS: "4",
        },
        logLines,
      });
      alice = await server.createAccount("alice@example.org", server.admin.sid);
      bob = await server.createAccount("bob@example.org", server.admin.sid);
    });
    after(async () => {
      await server?.close();
      await dns?.close();
    });

    test("create answers the records to publish: DKIM, SPF, DMARC and the bounce MX", async () => {
      const created = await create(alice, "Example.COM");
      assert.equal(created.status, 200, created.text);
      const domain = created.json;
      assert.deepEqual(Object.keys(domain).sort(), DOMAIN_FIELDS);
      assert.match(domain.sid, /^DM[0-9a-f]{32}$/);
      assert.equal(domain.account_sid, alice.sid);
      assert.equal(domain.domain_name, "example.com");
      assert.equal(domain.status, "pending");
      assert.equal(domain.uri, `${domains(alice)}/${domain.sid}.json`);
      assert.deepEqual(
        domain.dns_records.map((r: Rec) => r.purpose),
        ["dkim", "spf", "dmarc", "bounce"],
      );
      assert.ok(domain.dns_records.every((r: Rec) => r.status === "missing"));

      const [dkim] = byPurpose(domain, "dkim") as [Rec];
      assert.equal(dkim.type, "TXT");
      assert.match(dkim.selector ?? "", /^mr\d{8}[0-9a-f]{4}$/);
      assert.equal(dkim.name, `${dkim.selector}._domainkey.example.com`);
      const tags = Object.fromEntries(
        dkim.value.split(";").map((t) => t.trim().split("=", 2) as [string, string]),
      );
      assert.equal(tags.v, "DKIM1");
      assert.equal(tags.k, "rsa");
      const key = createPublicKey({
        key: Buffer.from(dkim.value.split("p=")[1] as string, "base64"),
        format: "der",
        type: "spki",
      });
      assert.equal(key.asymmetricKeyType, "rsa");
      assert.equal(key.asymmetricKeyDetails?.modulusLength, 2048);

      const [spf] = byPurpose(domain, "spf") as [Rec];
      assert.deepEqual(
        [spf.type, spf.name, spf.value],
        ["TXT", "example.com", "v=spf1 include:_spf.mailroom.test ~all"],
      );
      const [dmarc] = byPurpose(domain, "dmarc") as [Rec];
      assert.equal(dmarc.type, "TXT");
      assert.equal(dmarc.name, "_dmarc.example.com");
      assert.match(dmarc.value, /^v=DMARC1; p=none/);
      const [bounce] = byPurpose(domain, "bounce") as [Rec];
      assert.equal(bounce.type, "MX");
      assert.equal(bounce.name, "bounces.example.com");
      assert.match(bounce.value, /^10 \S+$/);
      assert.deepEqual(
        domain.dkim_keys.map((k: { algorithm: string; state: string; selector: string }) => [
          k.algorithm,
          k.state,
          k.selector,
        ]),
        [["rsa", "active", dkim.selector]],
      );

      // XML by default, records as elements.
      const xml = await call(alice, "GET", `/${domain.sid}`);
      assert.equal(xml.status, 200);
      assert.match(xml.text, /<Domain>[\s\S]*<DomainName>example\.com<\/DomainName>/);
      assert.match(xml.text, /<DnsRecords><DnsRecord><Type>TXT<\/Type>/);
      const listed = await call(alice, "GET", ".json");
      assert.equal(listed.status, 200);
      assert.deepEqual(
        listed.json.domains.map((d: { sid: string }) => d.sid),
        [domain.sid],
      );
      assert.equal(listed.json.total, 1);
    });

    test("names: punycoded, refused when not a domain; one owner per domain; limits", async () => {
      const idn = await create(bob, "Bücher.example");
      assert.equal(idn.status, 200, idn.text);
      assert.equal(idn.json.domain_name, "xn--bcher-kva.example");
      for (const bad of [
        "example",
        "exa mple.com",
        "example.com.",
        "-a.example",
        "a..example",
        " x.example",
        "1.2.3.4",
      ]) {
        const refused = await create(bob, bad);
        assert.equal(refused.status, 400, bad);
        assert.equal(refused.json.code, 16002, bad);
      }
      const missing = await call(bob, "POST", ".json", {});
      assert.equal(missing.json.code, 16001);
      assert.equal(missing.json.message, "DomainName can not be null.");
      const unknown = await create(bob, "ok.example", { Selector: "x" });
      assert.equal(unknown.status, 400);
      assert.equal(unknown.json.code, 20009);

      // example.com is alice's: nobody else gets it, and her domain is not bob's to see.
      const taken = await create(bob, "EXAMPLE.com");
      assert.equal(taken.status, 409);
      assert.equal(taken.json.code, 16004);
      const mine = (await call(alice, "GET", ".json")).json.domains[0];
      const foreign = await call(bob, "GET", `/${mine.sid}.json`);
      assert.equal(foreign.status, 404);
      assert.equal(foreign.json.code, 16003);
      assert.equal((await call(bob, "POST", `/${mine.sid}/Verify.json`)).status, 404);
      assert.equal((await call(bob, "DELETE", `/${mine.sid}`)).status, 404);
      assert.equal((await call(alice, "GET", "/DMnot-a-sid.json")).json.code, 16003);

      const algorithms = await create(bob, "two.example", { DkimAlgorithms: "rsa,ed25519" });
      assert.equal(algorithms.status, 200, algorithms.text);
      const dkim = byPurpose(algorithms.json, "dkim");
      assert.equal(dkim.length, 2);
      const ed = dkim.find((r) => r.value.includes("k=ed25519")) as Rec;
      assert.equal(Buffer.from(ed.value.split("p=")[1] as string, "base64").length, 32);
      assert.equal((await create(bob, "three.example", { DkimAlgorithms: "ed25519" })).json.code, 16006);

      // MAILROOM_MAX_DOMAINS=4: bob has two.
      assert.equal((await create(bob, "d3.example")).status, 200);
      assert.equal((await create(bob, "d4.example")).status, 200);
      const over = await create(bob, "d5.example");
      assert.equal(over.status, 403);
      assert.equal(over.json.code, 16005);

      // Deleted: gone, and the name is free again.
      const d4 = (await call(bob, "GET", ".json")).json.domains.find(
        (d: { domain_name: string }) => d.domain_name === "d4.example",
      );
      assert.equal((await call(bob, "DELETE", `/${d4.sid}`)).status, 204);
      assert.equal((await call(bob, "GET", `/${d4.sid}.json`)).status, 404);
      assert.equal((await create(bob, "d4.example")).status, 200);

      // A closed account (closed is final) no longer holds its domain.
      const dave = await server.createAccount("dave@example.org", server.admin.sid);
      assert.equal((await create(dave, "closing.example")).status, 200);
      assert.equal((await create(alice, "closing.example")).json.code, 16004);
      const closed = await request(server, "POST", `${API}/Accounts/${dave.sid}.json`, {
        auth: server.admin,
        form: { Status: "closed" },
      });
      assert.equal(closed.status, 200, closed.text);
      const reused = await create(alice, "closing.example");
      assert.equal(reused.status, 200, reused.text);
      assert.equal(reused.json.account_sid, alice.sid);
    });

    test("Verify: verified when published; mismatch says what was found; missing; SERVFAIL is temporary", async () => {
      const created = (await create(alice, "verify.example")).json;
      const path = `/${created.sid}/Verify.json`;
      const none = await call(alice, "POST", path);
      assert.equal(none.status, 200, none.text);
      assert.equal(none.json.status, "pending");
      assert.ok(none.json.dns_records.every((r: Rec) => r.status === "missing"));
      assert.ok(none.json.date_checked);

      publish(dns, created.dns_records);
      const verified = await call(alice, "POST", path);
      assert.equal(verified.json.status, "verified");
      assert.deepEqual(
        verified.json.dns_records.map((r: Rec) => r.status),
        ["verified", "verified", "verified", "verified"],
      );
      assert.equal((await call(alice, "GET", `/${created.sid}.json`)).json.status, "verified");

      // The DKIM record replaced by another key: mismatch, with what was found; the domain failed.
      const [dkim] = byPurpose(created, "dkim") as [Rec];
      dns.set(dkim.name, [
        { type: "TXT", data: "v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAother" },
      ]);
      dns.set("verify.example", [{ type: "TXT", data: "v=spf1 ip4:192.0.2.1 -all" }]);
      const changed = await call(alice, "POST", path);
      assert.equal(changed.json.status, "failed");
      const [dkimNow] = byPurpose(changed.json, "dkim") as [Rec];
      assert.equal(dkimNow.status, "mismatch");
      assert.match(dkimNow.found ?? "", /p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAother/);
      const [spfNow] = byPurpose(changed.json, "spf") as [Rec];
      assert.equal(spfNow.status, "mismatch");
      assert.equal(spfNow.found, "v=spf1 ip4:192.0.2.1 -all");
      // Losing the record is told to the account as a Notification.
      const notes = await request(server, "GET", `${API}/Accounts/${alice.sid}/Notifications.json`, {
        auth: alice,
      });
      const note = notes.json.notifications.find((n: { error_code: number }) => n.error_code === 16100);
      assert.ok(note, notes.text);
      assert.match(note.message_text, /verify\.example/);

      dns.remove(dkim.name);
      const removed = await call(alice, "POST", path);
      assert.equal((byPurpose(removed.json, "dkim")[0] as Rec).status, "missing");
      assert.equal(removed.json.status, "failed");

      // Published again, then the DNS server fails: the record keeps its status and says why.
      publish(dns, created.dns_records);
      assert.equal((await call(alice, "POST", path)).json.status, "verified");
      dns.fail(dkim.name, "SERVFAIL");
      const failing = await call(alice, "POST", path);
      assert.equal(failing.status, 200);
      const [dkimFailing] = byPurpose(failing.json, "dkim") as [Rec];
      assert.equal(dkimFailing.status, "verified");
      assert.match(dkimFailing.error ?? "", /temporary DNS failure/);
      assert.equal(failing.json.status, "verified");
      dns.fail(dkim.name, undefined);
    });

    test("rotation: both keys listed, the new one active once verified, the old one retired", async () => {
      const created = (await create(alice, "rotate.example")).json;
      publish(dns, created.dns_records);
      assert.equal((await call(alice, "POST", `/${created.sid}/Verify.json`)).json.status, "verified");
      const [oldKey] = created.dkim_keys as [{ selector: string }];

      const rotated = await call(alice, "POST", `/${created.sid}/Keys.json`);
      assert.equal(rotated.status, 200, rotated.text);
      assert.deepEqual(
        rotated.json.dkim_keys.map((k: { state: string }) => k.state),
        ["active", "pending"],
      );
      const newKey = rotated.json.dkim_keys[1];
      assert.notEqual(newKey.selector, oldKey.selector);
      assert.equal(byPurpose(rotated.json, "dkim").length, 2);
      assert.equal((await call(alice, "POST", `/${created.sid}/Keys.json`)).json.code, 16009);

      // Not published yet: the old key keeps signing.
      const early = await call(alice, "POST", `/${created.sid}/Verify.json`);
      assert.deepEqual(
        early.json.dkim_keys.map((k: { state: string }) => k.state),
        ["active", "pending"],
      );
      assert.equal(early.json.status, "verified");
      publish(dns, byPurpose(rotated.json, "dkim"));
      const switched = await call(alice, "POST", `/${created.sid}/Verify.json`);
      assert.deepEqual(
        switched.json.dkim_keys.map((k: { selector: string; state: string }) => [k.selector, k.state]),
        [
          [oldKey.selector, "previous"],
          [newKey.selector, "active"],
        ],
      );
      const inUse = await call(alice, "DELETE", `/${created.sid}/Keys/${newKey.selector}.json`);
      assert.equal(inUse.status, 409);
      assert.equal(inUse.json.code, 16008);
      assert.equal((await call(alice, "DELETE", `/${created.sid}/Keys/nosuch.json`)).json.code, 16007);
      const retired = await call(alice, "DELETE", `/${created.sid}/Keys/${oldKey.selector}.json`);
      assert.equal(retired.status, 200, retired.text);
      assert.deepEqual(
        retired.json.dkim_keys.map((k: { selector: string }) => k.selector),
        [newKey.selector],
      );
      assert.deepEqual(
        byPurpose(retired.json, "dkim").map((r) => r.selector),
        [newKey.selector],
      );
    });

    test("private keys are stored sealed and never shown or logged", async () => {
      const db = openRawDb(server);
      try {
        const rows = await db.selectFrom("domains").select(["dkim_keys"]).execute();
        assert.ok(rows.length > 0);
        for (const row of rows) {
          assert.doesNotMatch(row.dkim_keys, /PRIVATE KEY/);
          for (const key of JSON.parse(row.dkim_keys)) assert.match(key.privateKeySealed, /^v1:/);
        }
      } finally {
        await db.destroy();
      }
      for (const response of responses) {
        assert.doesNotMatch(response.text, /PRIVATE KEY|privateKey|Sealed/i);
      }
      assert.doesNotMatch(JSON.stringify(logLines), /PRIVATE KEY|privateKeySealed/);
    });

    test("the background re-check finds a lost record, once per round across processes", async () => {
      const checked = await startMailroom({
        store: variant.kind,
        env: { MAILROOM_DNS_SERVERS: dns.servers, MAILROOM_DOMAIN_CHECK_INTERVAL_MS: "1000" },
      });
      // On PostgreSQL a second process checks the same domains: each round, one of them does.
      const peer =
        variant.kind === "postgres"
          ? await startMailroom({
              databaseUrl: checked.databaseUrl,
              dataDir: checked.dataDir,
              admin: checked.admin,
              keepData: true,
              env: { MAILROOM_DNS_SERVERS: dns.servers, MAILROOM_DOMAIN_CHECK_INTERVAL_MS: "1000" },
            })
          : undefined;
      try {
        const owner = await checked.createAccount("carol@example.org", checked.admin.sid);
        const made = await request(checked, "POST", `${API}/Accounts/${owner.sid}/Domains.json`, {
          auth: owner,
          form: { DomainName: "background.example" },
        });
        publish(dns, made.json.dns_records);
        const path = `${API}/Accounts/${owner.sid}/Domains/${made.json.sid}.json`;
        await request(checked, "POST", path.replace(".json", "/Verify.json"), { auth: owner });
        dns.remove((byPurpose(made.json, "dkim")[0] as Rec).name);
        const failed = await waitFor("the re-check to mark the domain failed", async () => {
          const got = await request(checked, "GET", path, { auth: owner });
          return got.json.status === "failed" ? got.json : undefined;
        });
        assert.equal((byPurpose(failed, "dkim")[0] as Rec).status, "missing");
        const notes = await request(checked, "GET", `${API}/Accounts/${owner.sid}/Notifications.json`, {
          auth: owner,
        });
        const lost = notes.json.notifications.filter((n: { error_code: number }) => n.error_code === 16100);
        assert.equal(lost.length, 1, notes.text);
      } finally {
        await peer?.close();
        await checked.close();
      }
    });
  });
}

describe("domain settings", () => {
  test("MAILROOM_SPF_INCLUDE takes SPF mechanisms only; the policy's default follows the delivery mode", () => {
    assert.deepEqual(
      loadConfig({ MAILROOM_SPF_INCLUDE: "include:_spf.relay.example, ip4:192.0.2.0/24 mx" }).spfMechanisms,
      ["include:_spf.relay.example", "ip4:192.0.2.0/24", "mx"],
    );
    assert.equal(loadConfig({}).spfMechanisms, undefined);
    for (const bad of ["-all", "include:x;rm", "v=spf1 mx", "redirect=_spf.example"]) {
      assert.throws(
        () => loadConfig({ MAILROOM_SPF_INCLUDE: bad }),
        /MAILROOM_SPF_INCLUDE must be SPF mechanisms/,
      );
    }
    assert.equal(requireVerifiedDomain(loadConfig({})), false);
    assert.equal(requireVerifiedDomain(loadConfig({ MAILROOM_SMTP_URL: "smtp://127.0.0.1:2525" })), false);
    assert.equal(
      requireVerifiedDomain({ requireVerifiedDomain: undefined, deliveryMode: "mx" as never }),
      true,
    );
    assert.equal(requireVerifiedDomain({ requireVerifiedDomain: false, deliveryMode: "mx" as never }), false);
    assert.equal(requireVerifiedDomain(loadConfig({ MAILROOM_REQUIRE_VERIFIED_DOMAIN: "1" })), true);
    assert.throws(() => loadConfig({ MAILROOM_REQUIRE_VERIFIED_DOMAIN: "yes" }), /must be 1 or 0/);
    assert.throws(() => loadConfig({ MAILROOM_DOMAIN_CHECK_INTERVAL_MS: "5" }), /between 1000/);
  });
});
