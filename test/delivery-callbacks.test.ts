import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { FAST_RETRIES, getMessage, waitForFinal } from "./helpers/delivery.js";
import { sendEmail, startMailroom, type TestServer } from "./helpers/mailroom.js";
import { SmtpSink } from "./helpers/smtp-sink.js";
import { waitFor } from "./helpers/wait.js";

interface Callback {
  path: string;
  contentType: string | undefined;
  form: URLSearchParams;
}

/** A real HTTP endpoint for status callbacks; `answer` picks the status code per request. */
async function startReceiver(answer: (path: string, nth: number) => number) {
  const received: Callback[] = [];
  const server: Server = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk: Buffer) => {
      body += chunk.toString("utf8");
    });
    req.on("end", () => {
      const path = req.url ?? "";
      const nth = received.filter((c) => c.path === path).length;
      received.push({ path, contentType: req.headers["content-type"], form: new URLSearchParams(body) });
      res.statusCode = answer(path, nth);
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe("status callbacks", () => {
  let sink: SmtpSink;
  let server: TestServer;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;

  before(async () => {
    // /flaky fails once (then the retry succeeds); /broken always fails.
    receiver = await startReceiver((path, nth) =>
      path === "/broken" || (path === "/flaky" && nth === 0) ? 500 : 204,
    );
    sink = await SmtpSink.start({
      rules: {
        recipient: (address) =>
          address.startsWith("bounce@") ? { code: 550, message: "5.1.1 Unknown user" } : undefined,
      },
    });
    // The /broken callback is still retrying at the end: stop waiting for it quickly.
    server = await startMailroom({
      env: {
        MAILROOM_SMTP_URL: sink.url,
        MAILROOM_SHUTDOWN_TIMEOUT_MS: "300",
        ...FAST_RETRIES,
        MAILROOM_WEBHOOK_RETRY_BASE_MS: "50",
      },
    });
  });
  after(async () => {
    await server?.close();
    await sink?.stop();
    await receiver?.close();
  });

  test("a sent message POSTs MessageStatus=sent with Restcomm's form fields", async () => {
    const accepted = (await sendEmail(server, server.admin, { StatusCallback: `${receiver.url}/ok` })).json;
    const callback = await waitFor("the callback", () => receiver.received.find((c) => c.path === "/ok"));
    assert.match(callback.contentType ?? "", /^application\/x-www-form-urlencoded/);
    assert.equal(callback.form.get("MessageSid"), accepted.sid);
    assert.equal(callback.form.get("AccountSid"), server.admin.sid);
    assert.equal(callback.form.get("MessageStatus"), "sent");
    assert.equal(callback.form.get("To"), "john.doe@yourcompany.com");
    assert.equal(callback.form.get("From"), "jane.doe@yourcompany.com");
    assert.equal(callback.form.get("ErrorCode"), null);
  });

  test("a failed message POSTs MessageStatus=failed with ErrorCode and ErrorMessage", async () => {
    const accepted = (
      await sendEmail(server, server.admin, {
        To: "bounce@rcpt.example",
        StatusCallback: `${receiver.url}/failed`,
      })
    ).json;
    const callback = await waitFor("the callback", () => receiver.received.find((c) => c.path === "/failed"));
    assert.equal(callback.form.get("MessageSid"), accepted.sid);
    assert.equal(callback.form.get("MessageStatus"), "failed");
    assert.equal(callback.form.get("ErrorCode"), "13101");
    assert.match(callback.form.get("ErrorMessage") ?? "", /550 5\.1\.1 Unknown user/);
  });

  test("a callback answered with 500 is retried", async () => {
    await sendEmail(server, server.admin, { StatusCallback: `${receiver.url}/flaky` });
    await waitFor(
      "the retried callback",
      () => receiver.received.filter((c) => c.path === "/flaky").length === 2,
    );
  });

  test("a failing or unreachable callback never changes the message's status", async () => {
    const broken = (await sendEmail(server, server.admin, { StatusCallback: `${receiver.url}/broken` })).json;
    // A port nothing listens on any more: the POST is refused.
    const closedPort = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, "127.0.0.1", () => {
        const { port } = probe.address() as AddressInfo;
        probe.close(() => resolve(port));
      });
    });
    const unreachable = (
      await sendEmail(server, server.admin, { StatusCallback: `http://127.0.0.1:${closedPort}/nowhere` })
    ).json;
    assert.equal((await waitForFinal(server, server.admin, broken.sid)).status, "sent");
    assert.equal((await waitForFinal(server, server.admin, unreachable.sid)).status, "sent");
    await waitFor("the broken callback to be tried", () =>
      receiver.received.some((c) => c.path === "/broken"),
    );
    assert.equal((await getMessage(server, server.admin, broken.sid)).status, "sent");
    assert.equal((await getMessage(server, server.admin, unreachable.sid)).error_code, undefined);
  });
});
