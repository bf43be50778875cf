import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { ConfigError, loadConfig } from "../src/config/config.js";
import { type Certificate, makeCertificate } from "./helpers/certificates.js";
import { FAST_RETRIES, getAttempts, waitForFinal } from "./helpers/delivery.js";
import { sendEmail, startMailroom, type TestServer } from "./helpers/mailroom.js";
import { SmtpSink } from "./helpers/smtp-sink.js";
import { waitFor } from "./helpers/wait.js";

type Json = Record<string, unknown>;

/** A relay without STARTTLS that offers AUTH (smtp-server would refuse it over plain text unless told). */
async function plainRelayWithAuth(logins: string[], authOptional = true) {
  return SmtpSink.start({
    server: {
      disabledCommands: ["STARTTLS"],
      allowInsecureAuth: true,
      authOptional,
      onAuth: (auth, _session, callback) => {
        logins.push(auth.username ?? "");
        callback(null, { user: auth.username });
      },
    },
  });
}

async function firstAttempt(server: TestServer, sid: string): Promise<Json> {
  return waitFor("a first attempt", async () => (await getAttempts(server, server.admin, sid))[0] as Json);
}

describe("relay credentials and TLS", () => {
  test("credentials are not sent to a relay without TLS: the attempt fails with 13110 and is retried", async () => {
    const logins: string[] = [];
    const sink = await plainRelayWithAuth(logins);
    const server = await startMailroom({
      env: { MAILROOM_SMTP_URL: `smtp://user:secret@127.0.0.1:${sink.port}`, ...FAST_RETRIES },
    });
    try {
      const accepted = (await sendEmail(server, server.admin)).json;
      const attempt = await firstAttempt(server, accepted.sid);
      assert.equal(attempt.error_code, 13110, String(attempt.error_message));
      assert.match(String(attempt.error_message), /allowInsecureAuth=true/);
      assert.deepEqual(logins, [], "no AUTH reached the relay");
      assert.ok(!sink.commands.includes("AUTH"));
      assert.equal(sink.received.length, 0);
    } finally {
      await server.close();
      await sink.stop();
    }
  });

  test("?allowInsecureAuth=true sends them anyway, as asked", async () => {
    const logins: string[] = [];
    const sink = await plainRelayWithAuth(logins);
    const server = await startMailroom({
      env: {
        MAILROOM_SMTP_URL: `smtp://user:secret@127.0.0.1:${sink.port}?allowInsecureAuth=true`,
        ...FAST_RETRIES,
      },
    });
    try {
      const accepted = (await sendEmail(server, server.admin)).json;
      const message = await waitForFinal(server, server.admin, accepted.sid);
      assert.equal(message.status, "sent");
      assert.ok(logins.includes("user"));
    } finally {
      await server.close();
      await sink.stop();
    }
  });

  test("a relay that requires a login Mailroom was not given says so (13105, retried)", async () => {
    const sink = await plainRelayWithAuth([], false);
    const server = await startMailroom({ env: { MAILROOM_SMTP_URL: sink.url, ...FAST_RETRIES } });
    try {
      const accepted = (await sendEmail(server, server.admin)).json;
      const attempt = await firstAttempt(server, accepted.sid);
      assert.equal(attempt.error_code, 13105, String(attempt.error_message));
      assert.match(String(attempt.error_message), /requires authentication/);
      assert.match(String(attempt.error_message), /MAILROOM_SMTP_URL has no user name and password/);
    } finally {
      await server.close();
      await sink.stop();
    }
  });

  test("a graceful stop says QUIT on the idle pooled connections", async () => {
    const sink = await SmtpSink.start();
    const server = await startMailroom({ env: { MAILROOM_SMTP_URL: sink.url, ...FAST_RETRIES } });
    const accepted = (await sendEmail(server, server.admin)).json;
    assert.equal((await waitForFinal(server, server.admin, accepted.sid)).status, "sent");
    assert.ok(!sink.commands.includes("QUIT"));
    await server.close();
    try {
      await waitFor("QUIT at the relay", () => sink.commands.includes("QUIT"));
    } finally {
      await sink.stop();
    }
  });
});

describe("a relay with a certificate of its own CA (MAILROOM_SMTP_CA_FILE)", () => {
  let dir: string;
  let relay: Certificate;
  let sink: SmtpSink;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "mailroom-ca-"));
    relay = await makeCertificate(dir, "relay", ["relay.test"]);
    sink = await SmtpSink.start({ secure: true, server: { key: relay.key, cert: relay.cert } });
  });
  after(async () => {
    await sink?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const relayUrl = () => `smtps://127.0.0.1:${sink.port}?tls.servername=relay.test`;

  test("with the CA file, the certificate is verified and the message goes out", async () => {
    const server = await startMailroom({
      env: { MAILROOM_SMTP_URL: relayUrl(), MAILROOM_SMTP_CA_FILE: relay.certFile, ...FAST_RETRIES },
    });
    try {
      const accepted = (await sendEmail(server, server.admin)).json;
      assert.equal((await waitForFinal(server, server.admin, accepted.sid)).status, "sent");
    } finally {
      await server.close();
    }
  });

  test("without it, the attempt fails with 13105 and the hint names MAILROOM_SMTP_CA_FILE first", async () => {
    const server = await startMailroom({ env: { MAILROOM_SMTP_URL: relayUrl(), ...FAST_RETRIES } });
    try {
      const accepted = (await sendEmail(server, server.admin)).json;
      const attempt = await firstAttempt(server, accepted.sid);
      assert.equal(attempt.error_code, 13105, String(attempt.error_message));
      const text = String(attempt.error_message);
      assert.ok(text.indexOf("MAILROOM_SMTP_CA_FILE") >= 0, text);
      assert.ok(text.indexOf("MAILROOM_SMTP_CA_FILE") < text.indexOf("rejectUnauthorized"), text);
    } finally {
      await server.close();
    }
  });
});

describe("relay settings are checked at start", () => {
  const start = (env: Record<string, string>) => () => loadConfig(env);

  test("an unknown option in MAILROOM_SMTP_URL is refused, not ignored", () => {
    assert.throws(start({ MAILROOM_SMTP_URL: "smtp://relay.example:587?tls.ca=/etc/ca.pem" }), (error) => {
      assert.ok(error instanceof ConfigError);
      assert.match(error.message, /MAILROOM_SMTP_CA_FILE/);
      return true;
    });
    assert.throws(
      start({ MAILROOM_SMTP_URL: "smtp://relay.example:587?secure=true" }),
      /unknown option \?secure=/,
    );
    assert.throws(
      start({ MAILROOM_SMTP_URL: "smtp://relay.example:587?allowInsecureAuth=yes" }),
      /must be true or false/,
    );
    const config = loadConfig({
      MAILROOM_SMTP_URL:
        "smtp://relay.example:587?tls.rejectUnauthorized=false&name=mx.example&allowInsecureAuth=true",
    });
    assert.ok(config.smtpUrl);
  });

  test("MAILROOM_SMTP_CA_FILE must be a readable PEM certificate", async () => {
    const dir = await mkdtemp(join(tmpdir(), "mailroom-ca-"));
    try {
      assert.throws(start({ MAILROOM_SMTP_CA_FILE: join(dir, "missing.pem") }), /cannot read/);
      await writeFile(join(dir, "not.pem"), "hello");
      assert.throws(start({ MAILROOM_SMTP_CA_FILE: join(dir, "not.pem") }), /no PEM certificate/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
