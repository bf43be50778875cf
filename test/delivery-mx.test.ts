import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import { type AddressInfo, createServer as createTcpServer, type Server as TcpServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, beforeEach, describe, test } from "node:test";
import { type Certificate, makeCertificate } from "./helpers/certificates.js";
import { FAST_RETRIES, getAttempts, getMessage, mxModeEnv, waitForFinal } from "./helpers/delivery.js";
import { startTestDns, type TestDns } from "./helpers/dns-server.js";
import { API, request, sendEmail, startMailroom, type TestServer } from "./helpers/mailroom.js";
import { SmtpSink } from "./helpers/smtp-sink.js";
import { storeVariants } from "./helpers/stores.js";
import { waitFor } from "./helpers/wait.js";

/**
 * Direct-to-MX delivery against a real DNS server (test/helpers/dns-server.ts) and real SMTP sinks,
 * each MX host on a loopback address of its own (127.0.0.2, 127.0.0.3, …), all on one port
 * (MAILROOM_MX_PORT).
 */

interface Hosts {
  a: SmtpSink;
  b: SmtpSink;
  c: SmtpSink;
  /** Answers 421 at the greeting. */
  busy: SmtpSink;
  backup: SmtpSink;
  /** The address of a domain without MX. */
  bare: SmtpSink;
  /** Offers STARTTLS (smtp-server's built-in self-signed certificate). */
  starttls: SmtpSink;
  /** Offers STARTTLS with a certificate for mx.secure.example (MAILROOM_MX_CA_FILE trusts it). */
  secure: SmtpSink;
}

/** Connections the busy host (421 at the greeting) was offered. */
let busyConnections = 0;

/** An address with nothing listening: connections are refused. */
const DOWN = "127.0.0.20";

/** MTA-STS policies by host name (mta-sts.{domain}), served over HTTPS on 127.0.0.11. */
const STS_POLICIES: Record<string, string> = {
  "mta-sts.sts.example": "version: STSv1\nmode: enforce\nmx: mx.starttls.example\nmax_age: 86400\n",
  "mta-sts.good-sts.example": "version: STSv1\nmode: enforce\nmx: *.secure.example\nmax_age: 86400\n",
  "mta-sts.wrong-sts.example": "version: STSv1\nmode: enforce\nmx: mx.other.example\nmax_age: 86400\n",
};

async function startPolicyServer(certificate: Certificate): Promise<HttpsServer> {
  const server = createHttpsServer({ key: certificate.key, cert: certificate.cert }, (request, response) => {
    const policy = STS_POLICIES[String(request.headers.host).replace(/:\d+$/, "")];
    if (request.url !== "/.well-known/mta-sts.txt" || policy === undefined) response.writeHead(404).end();
    else response.writeHead(200, { "content-type": "text/plain" }).end(policy);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.11", resolve));
  return server;
}

async function startHosts(secureCertificate: Certificate): Promise<Hosts> {
  const a = await SmtpSink.start({ host: "127.0.0.2" });
  const port = a.port;
  const on = (host: string, extra: Parameters<typeof SmtpSink.start>[0] = {}) =>
    SmtpSink.start({ host, port, ...extra });
  const refuseAtGreeting = {
    onConnect: (_session: unknown, callback: (error?: Error | null) => void) => {
      busyConnections++;
      callback(Object.assign(new Error("too busy, try another host"), { responseCode: 421 }));
    },
  };
  return {
    a,
    b: await on("127.0.0.3"),
    c: await on("127.0.0.4"),
    busy: await on("127.0.0.5", { server: refuseAtGreeting }),
    backup: await on("127.0.0.6"),
    bare: await on("127.0.0.7"),
    starttls: await on("127.0.0.8", { server: { disabledCommands: ["AUTH"] } }),
    secure: await on("127.0.0.9", {
      server: { disabledCommands: ["AUTH"], key: secureCertificate.key, cert: secureCertificate.cert },
    }),
  };
}

function zone(dns: TestDns): void {
  const mx = (domain: string, ...hosts: Array<[string, number]>) =>
    dns.set(
      domain,
      hosts.map(([exchange, priority]) => ({ type: "MX", exchange, priority })),
    );
  const a = (name: string, address: string) => dns.set(name, [{ type: "A", address }]);
  a("mx.a.example", "127.0.0.2");
  a("mx.b.example", "127.0.0.3");
  a("mx.c.example", "127.0.0.4");
  a("mx.busy.example", "127.0.0.5");
  a("mx.backup.example", "127.0.0.6");
  a("mx.down.example", DOWN);
  a("mx.starttls.example", "127.0.0.8");
  a("mx.secure.example", "127.0.0.9");
  mx("a.example", ["mx.a.example", 10]);
  mx("b.example", ["mx.b.example", 10]);
  mx("c.example", ["mx.c.example", 10]);
  mx("deferring.example", ["mx.b.example", 10]);
  // Preference: the lowest first; the higher ones when it fails.
  mx("preferred.example", ["mx.backup.example", 20], ["mx.a.example", 10]);
  mx("first-down.example", ["mx.down.example", 10], ["mx.backup.example", 20]);
  mx("first-busy.example", ["mx.busy.example", 10], ["mx.backup.example", 20]);
  // No MX: its own A record stands in.
  a("bare.example", "127.0.0.7");
  dns.set("nullmx.example", [{ type: "MX", exchange: ".", priority: 0 }]);
  mx("flaky-dns.example", ["mx.c.example", 10]);
  mx("starttls.example", ["mx.starttls.example", 10]);
  mx("plain-required.example", ["mx.a.example", 10]);
  mx("secure.example", ["mx.secure.example", 10]);
  mx("paced.example", ["mx.c.example", 10]);
  mx("slow.example", ["mx.busy.example", 10]);
  a("mx.dropper.example", "127.0.0.12");
  mx("narrow.example", ["bare.example", 10]);
  mx("dropping.example", ["mx.dropper.example", 10], ["mx.backup.example", 20]);
  // MTA-STS: a policy in enforce mode for each (mta-sts.{domain} is the policy server).
  for (const domain of ["sts.example", "good-sts.example", "wrong-sts.example"]) {
    dns.set(`_mta-sts.${domain}`, [{ type: "TXT", data: "v=STSv1; id=20261129" }]);
    a(`mta-sts.${domain}`, "127.0.0.11");
  }
  mx("sts.example", ["mx.starttls.example", 10]);
  mx("good-sts.example", ["mx.secure.example", 10]);
  mx("wrong-sts.example", ["mx.secure.example", 10]);
}

function received(sink: SmtpSink, messageId: string) {
  return sink.received.filter((m) => m.messageId === messageId);
}

for (const variant of await storeVariants()) {
  describe(`direct-to-MX delivery (${variant.kind})`, { skip: variant.skip }, () => {
    let dir: string;
    let dns: TestDns;
    let hosts: Hosts;
    let server: TestServer;
    let policies: HttpsServer;
    /** Accepts connections on 127.0.0.12 and drops them at once, without a greeting; counts them. */
    let dropper: TcpServer;
    let dropped = 0;

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), "mailroom-mx-"));
      dns = await startTestDns();
      zone(dns);
      const mxCertificate = await makeCertificate(dir, "mx", ["mx.secure.example"]);
      const stsCertificate = await makeCertificate(dir, "sts", Object.keys(STS_POLICIES));
      hosts = await startHosts(mxCertificate);
      policies = await startPolicyServer(stsCertificate);
      dropper = createTcpServer((socket) => {
        dropped++;
        socket.destroy();
      });
      await new Promise<void>((resolve) => dropper.listen(hosts.a.port, "127.0.0.12", resolve));
      await writeFile(join(dir, "ca.pem"), [mxCertificate.cert, stsCertificate.cert].join("\n"));
      server = await startMailroom({
        store: variant.kind,
        env: {
          ...mxModeEnv(dns.servers, hosts.a.port),
          MAILROOM_TLS_REQUIRED_DOMAINS: "plain-required.example,secure.example",
          MAILROOM_MX_CA_FILE: join(dir, "ca.pem"),
          MAILROOM_DOMAIN_RATES: "paced.example=60/m",
          MAILROOM_DOMAIN_CONNECTIONS: "narrow.example=1",
          MAILROOM_DOMAIN_BACKOFF_MS: "600000",
          MAILROOM_MTA_STS_PORT: String((policies.address() as AddressInfo).port),
          ...FAST_RETRIES,
        },
      });
    });
    after(async () => {
      await server?.close();
      await Promise.all(Object.values(hosts ?? {}).map((sink: SmtpSink) => sink.stop()));
      await dns?.close();
      await new Promise((resolve) => (policies ? policies.close(resolve) : resolve(undefined)));
      await new Promise((resolve) => (dropper ? dropper.close(resolve) : resolve(undefined)));
      await rm(dir, { recursive: true, force: true });
    });
    beforeEach(() => {
      for (const sink of Object.values(hosts)) if (sink !== hosts.busy) sink.rules = {};
    });

    async function send(fields: Record<string, string>) {
      const response = await sendEmail(server, server.admin, { From: "sender@mailroom.example", ...fields });
      assert.equal(response.status, 200, response.text);
      return response.json as { sid: string; message_id: string };
    }

    test("three domains on three MX hosts: each host gets only its own recipients, the same bytes", async () => {
      const accepted = await send({
        To: "ann@a.example, bob@b.example",
        CC: "cat@c.example, al@A.example",
        BCC: "bea@b.example",
      });
      const message = await waitForFinal(server, server.admin, accepted.sid);
      assert.equal(message.status, "sent", message.error_message);
      const [atA] = received(hosts.a, accepted.message_id);
      const [atB] = received(hosts.b, accepted.message_id);
      const [atC] = received(hosts.c, accepted.message_id);
      assert.ok(atA && atB && atC, "every MX host got the message");
      // Grouped by domain case-insensitively; the address itself is sent as given.
      assert.deepEqual(atA.to.sort(), ["al@A.example", "ann@a.example"]);
      assert.deepEqual(atB.to.sort(), ["bea@b.example", "bob@b.example"]);
      assert.deepEqual(atC.to, ["cat@c.example"]);
      assert.equal(atA.from, "sender@mailroom.example");
      // Composed once: every domain got the very same bytes, without the BCC.
      assert.equal(atB.raw, atA.raw);
      assert.equal(atC.raw, atA.raw);
      assert.doesNotMatch(atA.raw, /bea@b\.example/);

      const [attempt] = await getAttempts(server, server.admin, accepted.sid);
      assert.equal(attempt.outcome, "accepted");
      const destinations = Object.fromEntries(
        attempt.recipients.map((r: { address: string; destination: string }) => [r.address, r.destination]),
      );
      assert.deepEqual(destinations, {
        "ann@a.example": "mx.a.example",
        "al@A.example": "mx.a.example",
        "bob@b.example": "mx.b.example",
        "bea@b.example": "mx.b.example",
        "cat@c.example": "mx.c.example",
      });
      // Restcomm XML: each recipient's element carries it too.
      const xml = await request(
        server,
        "GET",
        `${API}/Accounts/${server.admin.sid}/Email/Messages/${accepted.sid}/Attempts`,
        {
          auth: server.admin,
        },
      );
      assert.match(
        xml.text,
        /<Address>cat@c\.example<\/Address>.*?<Destination>mx\.c\.example<\/Destination>/s,
      );
    });

    test("one domain answers 4xx: the others are sent once, only its recipients are tried again", async () => {
      let deferrals = 0;
      hosts.b.rules = {
        recipient: (address) =>
          address.endsWith("@deferring.example") && deferrals++ === 0
            ? { code: 451, message: "4.3.0 try again later" }
            : undefined,
      };
      const accepted = await send({ To: "ann@a.example, dan@deferring.example, cat@c.example" });
      const message = await waitForFinal(server, server.admin, accepted.sid);
      assert.equal(message.status, "sent", message.error_message);
      assert.equal(received(hosts.a, accepted.message_id).length, 1);
      assert.equal(received(hosts.c, accepted.message_id).length, 1);
      assert.equal(received(hosts.b, accepted.message_id).length, 1);
      const attempts = await getAttempts(server, server.admin, accepted.sid);
      assert.equal(attempts.length, 2);
      assert.equal(attempts[0].outcome, "partial");
      assert.equal(attempts[0].error_code, 13103);
      assert.match(
        attempts[0].error_message,
        /^The MX host mx\.b\.example deferred dan@deferring\.example \("451 4\.3\.0 try again later"\)\./,
      );
      const first = Object.fromEntries(
        attempts[0].recipients.map((r: { address: string; state: string }) => [r.address, r.state]),
      );
      assert.deepEqual(first, {
        "ann@a.example": "accepted",
        "dan@deferring.example": "deferred",
        "cat@c.example": "accepted",
      });
      assert.deepEqual(
        attempts[1].recipients.map((r: { address: string; state: string }) => [r.address, r.state]),
        [["dan@deferring.example", "accepted"]],
      );
    });

    test("MX preference: the lowest preference is used first", async () => {
      const accepted = await send({ To: "pat@preferred.example" });
      assert.equal((await waitForFinal(server, server.admin, accepted.sid)).status, "sent");
      assert.equal(received(hosts.a, accepted.message_id).length, 1);
      assert.equal(received(hosts.backup, accepted.message_id).length, 0);
    });

    test("the first MX refuses connections or answers 421 at the greeting: the next one gets the mail", async () => {
      const down = await send({ To: "dee@first-down.example" });
      const busy = await send({ To: "bo@first-busy.example" });
      for (const accepted of [down, busy]) {
        const message = await waitForFinal(server, server.admin, accepted.sid);
        assert.equal(message.status, "sent", message.error_message);
        assert.equal(message.num_attempts, 1);
        assert.equal(received(hosts.backup, accepted.message_id).length, 1);
        const [attempt] = await getAttempts(server, server.admin, accepted.sid);
        assert.equal(attempt.recipients[0].destination, "mx.backup.example");
      }
      assert.equal(received(hosts.busy, busy.message_id).length, 0);
    });

    test("a domain without MX gets its mail at its A record", async () => {
      const accepted = await send({ To: "ben@bare.example" });
      assert.equal((await waitForFinal(server, server.admin, accepted.sid)).status, "sent");
      assert.deepEqual(received(hosts.bare, accepted.message_id)[0]?.to, ["ben@bare.example"]);
    });

    test("a null MX fails at once; a domain that does not exist too", async () => {
      const nullMx = await send({ To: "nobody@nullmx.example" });
      const missing = await send({ To: "nobody@missing.example" });
      const a = await waitForFinal(server, server.admin, nullMx.sid);
      assert.equal(a.status, "failed");
      assert.equal(a.num_attempts, 1);
      assert.equal(a.error_code, 16121, a.error_message);
      const b = await waitForFinal(server, server.admin, missing.sid);
      assert.equal(b.status, "failed");
      assert.equal(b.num_attempts, 1);
      assert.equal(b.error_code, 16120, b.error_message);
    });

    test("DNS SERVFAIL defers the mail; it goes out once DNS answers again", async () => {
      dns.fail("flaky-dns.example", "SERVFAIL");
      const accepted = await send({ To: "fay@flaky-dns.example" });
      const deferred = await waitFor("a deferred attempt", async () => {
        const attempts = await getAttempts(server, server.admin, accepted.sid);
        return attempts.length > 0 ? attempts[0] : undefined;
      });
      assert.equal(deferred.outcome, "deferred");
      assert.equal(deferred.error_code, 16122, deferred.error_message);
      assert.notEqual((await getMessage(server, server.admin, accepted.sid)).status, "failed");
      dns.fail("flaky-dns.example", undefined);
      const message = await waitForFinal(server, server.admin, accepted.sid);
      assert.equal(message.status, "sent", message.error_message);
      assert.equal(received(hosts.c, accepted.message_id).length, 1);
    });

    test("STARTTLS offered: the mail goes over TLS (opportunistic, no certificate check)", async () => {
      const accepted = await send({ To: "tia@starttls.example" });
      assert.equal((await waitForFinal(server, server.admin, accepted.sid)).status, "sent");
      assert.equal(received(hosts.starttls, accepted.message_id).length, 1);
      assert.ok(hosts.starttls.commands.includes("STARTTLS"), hosts.starttls.commands.join(" "));
    });

    test("a TLS-required domain whose MX offers no STARTTLS waits; nothing goes out in clear", async () => {
      const accepted = await send({ To: "ray@plain-required.example" });
      const attempt = await waitFor("a deferred attempt", async () => {
        const attempts = await getAttempts(server, server.admin, accepted.sid);
        return attempts.length > 0 ? attempts[0] : undefined;
      });
      assert.equal(attempt.outcome, "deferred");
      assert.equal(attempt.error_code, 16124, attempt.error_message);
      const message = await getMessage(server, server.admin, accepted.sid);
      assert.equal(message.status === "queued" || message.status === "sending", true, message.status);
      assert.equal(received(hosts.a, accepted.message_id).length, 0);
    });

    test("a TLS-required domain whose MX has a valid certificate gets its mail over verified TLS", async () => {
      const accepted = await send({ To: "sue@secure.example" });
      const message = await waitForFinal(server, server.admin, accepted.sid);
      assert.equal(message.status, "sent", message.error_message);
      assert.equal(received(hosts.secure, accepted.message_id).length, 1);
      assert.ok(hosts.secure.commands.includes("STARTTLS"));
    });

    test("over a domain's rate, messages wait in the queue for their turn; none fails", async () => {
      const sent = [];
      for (const name of ["p1", "p2", "p3"]) sent.push(await send({ To: `${name}@paced.example` }));
      let waited = 0;
      for (const accepted of sent) {
        const message = await waitForFinal(server, server.admin, accepted.sid);
        assert.equal(message.status, "sent", message.error_message);
        assert.equal(received(hosts.c, accepted.message_id).length, 1);
        const attempts = await getAttempts(server, server.admin, accepted.sid);
        // A wait is one deferred attempt, retried when the slot kept for it comes (not after a backoff).
        assert.ok(attempts.length <= 2, JSON.stringify(attempts));
        if (attempts.length === 2) {
          waited++;
          assert.equal(attempts[0].outcome, "deferred");
          assert.equal(attempts[0].error_code, 16126, attempts[0].error_message);
        }
        assert.equal(attempts[attempts.length - 1].outcome, "accepted");
      }
      // One message a second: three sent at once cannot all go at once.
      assert.ok(waited >= 2, `${waited} messages waited`);
    });

    test("a domain that says 421 is backed off as a whole: its next message waits without a connection", async () => {
      const first = await send({ To: "sam@slow.example" });
      const attempt = await waitFor("the first attempt", async () => {
        const attempts = await getAttempts(server, server.admin, first.sid);
        return attempts[0];
      });
      assert.equal(attempt.smtp_code, 421);
      const before = busyConnections;
      const second = await send({ To: "sid@slow.example" });
      const waiting = await waitFor("the second message's attempt", async () => {
        const attempts = await getAttempts(server, server.admin, second.sid);
        return attempts[0];
      });
      assert.equal(waiting.outcome, "deferred");
      assert.equal(waiting.error_code, 16127, waiting.error_message);
      assert.equal(busyConnections, before);
      const message = await getMessage(server, server.admin, second.sid);
      assert.equal(message.status, "queued");
      assert.ok(Date.parse(message.next_attempt) > Date.now() + 60_000, message.next_attempt);
    });

    test("MTA-STS enforce: a bad certificate, or an MX host the policy does not list, gets nothing", async () => {
      const badCertificate = await send({ To: "una@sts.example" });
      const unlisted = await send({ To: "vic@wrong-sts.example" });
      for (const accepted of [badCertificate, unlisted]) {
        const attempt = await waitFor("a deferred attempt", async () => {
          const attempts = await getAttempts(server, server.admin, accepted.sid);
          return attempts[0];
        });
        assert.equal(attempt.outcome, "deferred");
        assert.equal(attempt.error_code, 16124, attempt.error_message);
        assert.match(attempt.error_message, /MTA-STS/);
      }
      assert.equal(received(hosts.starttls, badCertificate.message_id).length, 0);
      assert.equal(received(hosts.secure, unlisted.message_id).length, 0);
    });

    test("MTA-STS enforce: a listed MX host with a valid certificate gets the mail", async () => {
      const accepted = await send({ To: "wes@good-sts.example" });
      const message = await waitForFinal(server, server.admin, accepted.sid);
      assert.equal(message.status, "sent", message.error_message);
      assert.equal(received(hosts.secure, accepted.message_id).length, 1);
    });

    test("an MX host that did not answer is tried after the others for a while", async () => {
      const first = await send({ To: "ada@dropping.example" });
      assert.equal((await waitForFinal(server, server.admin, first.sid)).status, "sent");
      assert.equal(dropped, 1);
      const second = await send({ To: "bea@dropping.example" });
      assert.equal((await waitForFinal(server, server.admin, second.sid)).status, "sent");
      assert.equal(received(hosts.backup, second.message_id).length, 1);
      // The backup took it straight away: the host that dropped the first connection was not asked again.
      assert.equal(dropped, 1);
    });

    test("MAILROOM_DOMAIN_CONNECTIONS: one transaction at a time to the domain, the others wait their turn", async () => {
      let most = 0;
      hosts.bare.rules = {
        dataDelayMs: 300,
        // Called once a message's delay is over: the others still in theirs are at the host at the same time.
        message: () => {
          most = Math.max(most, hosts.bare.unanswered + 1);
          return undefined;
        },
      };
      const sent = await Promise.all(
        ["n1", "n2", "n3"].map((name) => send({ To: `${name}@narrow.example` })),
      );
      for (const accepted of sent) {
        const message = await waitForFinal(server, server.admin, accepted.sid);
        assert.equal(message.status, "sent", message.error_message);
        assert.equal(message.num_attempts, 1);
      }
      assert.equal(most, 1);
    });
  });
}
