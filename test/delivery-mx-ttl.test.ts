import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { ConfigError, loadConfig } from "../src/config/config.js";
import { FAST_RETRIES, getAttempts, mxModeEnv, waitForFinal } from "./helpers/delivery.js";
import { startTestDns, type TestDns } from "./helpers/dns-server.js";
import { sendEmail, startMailroom, type TestServer } from "./helpers/mailroom.js";
import { SmtpSink } from "./helpers/smtp-sink.js";

describe("MAILROOM_DNS_MIN_TTL_MS", () => {
  test("5 s by default; 0 (TTLs as they are) up to an hour; anything else refused", () => {
    assert.equal(loadConfig({}).dnsMinTtlMs, 5000);
    assert.equal(loadConfig({ MAILROOM_DNS_MIN_TTL_MS: "0" }).dnsMinTtlMs, 0);
    for (const value of ["3600001", "-1", "5s"]) {
      assert.throws(
        () => loadConfig({ MAILROOM_DNS_MIN_TTL_MS: value }),
        (error) => error instanceof ConfigError && /MAILROOM_DNS_MIN_TTL_MS/.test(error.message),
        value,
      );
    }
  });
});

/**
 * Issue 15, "cache lookups for their TTL", seen from outside: a domain's MX moves from one host to
 * another, and the next message follows it once the MX record's TTL has run out, not before. The
 * floor under TTLs (MAILROOM_DNS_MIN_TTL_MS, 5 s by default) is lowered so a 1 s TTL counts as 1 s.
 * Storage plays no part here, so one store (the default) is enough.
 */
describe("direct-to-MX: MX answers are kept for their TTL", () => {
  let dns: TestDns;
  let first: SmtpSink;
  let second: SmtpSink;
  let server: TestServer;

  before(async () => {
    dns = await startTestDns();
    first = await SmtpSink.start({ host: "127.0.0.2" });
    second = await SmtpSink.start({ host: "127.0.0.3", port: first.port });
    dns.set("mx.first.example", [{ type: "A", address: "127.0.0.2", ttl: 3600 }]);
    dns.set("mx.second.example", [{ type: "A", address: "127.0.0.3", ttl: 3600 }]);
    dns.set("short-ttl.example", [{ type: "MX", exchange: "mx.first.example", priority: 10, ttl: 1 }]);
    dns.set("long-ttl.example", [{ type: "MX", exchange: "mx.first.example", priority: 10, ttl: 3600 }]);
    server = await startMailroom({
      env: {
        ...mxModeEnv(dns.servers, first.port),
        MAILROOM_DNS_MIN_TTL_MS: "0",
        ...FAST_RETRIES,
      },
    });
  });
  after(async () => {
    await server?.close();
    await first?.stop();
    await second?.stop();
    await dns?.close();
  });

  /** Sends one message to `to`, waits until it is sent, and says which MX host took it. */
  async function deliver(to: string): Promise<string> {
    const response = await sendEmail(server, server.admin, { From: "sender@mailroom.example", To: to });
    assert.equal(response.status, 200, response.text);
    const { sid } = response.json as { sid: string };
    const message = await waitForFinal(server, server.admin, sid);
    assert.equal(message.status, "sent", message.error_message);
    const [attempt] = await getAttempts(server, server.admin, sid);
    return attempt.recipients[0].destination;
  }

  const mxQueries = (domain: string) => dns.queries.filter((q) => q === `${domain} MX`).length;

  test("a 1 s TTL: the next message goes to the new MX host; a 1 hour TTL: it stays with the old one", async () => {
    assert.equal(await deliver("ann@short-ttl.example"), "mx.first.example");
    assert.equal(await deliver("bob@long-ttl.example"), "mx.first.example");
    // Both answers are cached by now (each message was sent after its lookup).
    const cachedBy = Date.now();
    dns.set("short-ttl.example", [{ type: "MX", exchange: "mx.second.example", priority: 10, ttl: 1 }]);
    dns.set("long-ttl.example", [{ type: "MX", exchange: "mx.second.example", priority: 10, ttl: 3600 }]);

    // Within the TTL the old answer stands: no new query.
    assert.equal(await deliver("cat@long-ttl.example"), "mx.first.example");
    assert.equal(mxQueries("long-ttl.example"), 1);

    // Not a guess at timing: the short answer was stored before `cachedBy`, so 1 s after it, it is stale.
    await sleep(cachedBy + 1_100 - Date.now());
    assert.equal(await deliver("dan@short-ttl.example"), "mx.second.example");
    assert.equal(await deliver("eve@long-ttl.example"), "mx.first.example");
    assert.equal(mxQueries("short-ttl.example"), 2, "the short TTL ran out: asked again");
    assert.equal(mxQueries("long-ttl.example"), 1, "the long TTL did not: not asked again");
    assert.equal(second.received.filter((m) => m.to.includes("dan@short-ttl.example")).length, 1);
    assert.equal(second.received.length, 1, "only the short-TTL domain moved");
  });
});
