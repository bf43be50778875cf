import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ConfigError, loadConfig } from "../src/config/config.js";
import { FAST_RETRIES, getAttempts } from "./helpers/delivery.js";
import { startTestDns, type TestDns } from "./helpers/dns-server.js";
import { sendEmail, startMailroom, type TestServer } from "./helpers/mailroom.js";
import { SmtpSink } from "./helpers/smtp-sink.js";
import { waitFor } from "./helpers/wait.js";

describe("direct-to-MX settings are checked at start", () => {
  const start = (env: Record<string, string>) => () => loadConfig({ MAILROOM_DELIVERY_MODE: "mx", ...env });

  test("mx is a delivery mode; the defaults are port 25, 10 connections per host, no rates", () => {
    const config = start({})();
    assert.equal(config.deliveryMode, "mx");
    assert.equal(config.mxPort, 25);
    assert.equal(config.mxPoolSize, 10);
    assert.deepEqual(config.domainRates, []);
    assert.deepEqual(config.tlsRequiredDomains, []);
    assert.equal(config.mxAllowPrivate, false);
    assert.ok(config.hostname.length > 0);
  });

  test("bad values are refused, naming the setting", () => {
    const refused = (env: Record<string, string>, pattern: RegExp) =>
      assert.throws(start(env), (error) => error instanceof ConfigError && pattern.test(error.message));
    refused({ MAILROOM_DOMAIN_RATES: "gmail.com=600" }, /MAILROOM_DOMAIN_RATES: expected domain=count\/unit/);
    refused({ MAILROOM_DOMAIN_RATES: "gmail.com=600/w" }, /MAILROOM_DOMAIN_RATES/);
    refused({ MAILROOM_TLS_REQUIRED_DOMAINS: "example.com, not a domain" }, /MAILROOM_TLS_REQUIRED_DOMAINS/);
    refused({ MAILROOM_HOSTNAME: "mail example.com" }, /MAILROOM_HOSTNAME must be a host name/);
    refused({ MAILROOM_MX_PORT: "0" }, /MAILROOM_MX_PORT must be between 1 and 65535/);
  });

  test("lists are read case-insensitively", () => {
    const config = start({
      MAILROOM_TLS_REQUIRED_DOMAINS: "Example.COM, bank.example.",
      MAILROOM_DOMAIN_RATES: "Gmail.com=600/h, example.com=10/m",
    })();
    assert.deepEqual(config.tlsRequiredDomains, ["example.com", "bank.example"]);
    assert.deepEqual(
      config.domainRates.map((r) => [r.domain, r.count, r.periodMs]),
      [
        ["gmail.com", 600, 3_600_000],
        ["example.com", 10, 60_000],
      ],
    );
  });
});

describe("direct-to-MX without MAILROOM_MX_ALLOW_PRIVATE", () => {
  let dns: TestDns;
  let sink: SmtpSink;
  let server: TestServer;
  const logLines: Array<Record<string, unknown>> = [];

  before(async () => {
    dns = await startTestDns();
    sink = await SmtpSink.start({ host: "127.0.0.2" });
    dns.set("inside.example", [{ type: "MX", exchange: "mx.inside.example", priority: 10 }]);
    dns.set("mx.inside.example", [{ type: "A", address: "127.0.0.2" }]);
    server = await startMailroom({
      logLines,
      env: {
        MAILROOM_DELIVERY_MODE: "mx",
        MAILROOM_REQUIRE_VERIFIED_DOMAIN: "0",
        MAILROOM_DNS_SERVERS: dns.servers,
        MAILROOM_MX_PORT: String(sink.port),
        // No dot: not a fully qualified name, so the start warns.
        MAILROOM_HOSTNAME: "mailroomhost",
        ...FAST_RETRIES,
      },
    });
  });
  after(async () => {
    await server?.close();
    await sink?.stop();
    await dns?.close();
  });

  test("an MX host on a loopback address is not contacted; the attempt says why", async () => {
    const response = await sendEmail(server, server.admin, {
      From: "a@mailroom.example",
      To: "bo@inside.example",
    });
    assert.equal(response.status, 200, response.text);
    const attempt = await waitFor("a deferred attempt", async () => {
      const attempts = await getAttempts(server, server.admin, response.json.sid);
      return attempts[0];
    });
    assert.equal(attempt.outcome, "deferred");
    assert.equal(attempt.error_code, 16123, attempt.error_message);
    assert.match(attempt.error_message, /loopback address \(MAILROOM_MX_ALLOW_PRIVATE=1 allows it\)/);
    assert.equal(sink.received.length, 0);
    assert.deepEqual(sink.commands, []);
  });

  test("a MAILROOM_HOSTNAME without a dot is warned about at start", () => {
    const warning = logLines.find((line) =>
      String(line.msg).includes("MAILROOM_HOSTNAME is not a fully qualified"),
    );
    assert.ok(warning, "the start logged the warning");
    assert.equal(warning.hostname, "mailroomhost");
  });
});
