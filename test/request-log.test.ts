import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { API, basicAuth, request, sendEmail, startMailroom, type TestServer } from "./helpers/mailroom.js";
import { waitFor } from "./helpers/wait.js";

/** A server-made id: the server's random prefix, a dash, a counter in base 36. */
const SERVER_ID = /^[0-9a-f]{12}-[0-9a-z]+$/;
const METRICS_TOKEN = "metrics-token-for-the-log-test-0123";

type LogLine = Record<string, unknown>;

describe("request ids and the request log", () => {
  let server: TestServer;
  const lines: LogLine[] = [];
  /** The one request line logged for `id`, once written (after the answer was sent). */
  const requestLine = (id: string) =>
    waitFor(`the request line of ${id}`, () => {
      const found = lines.filter((line) => line.msg === "request" && line.reqId === id);
      assert.ok(found.length <= 1, `one line per request, not ${found.length}`);
      return found[0];
    });

  before(async () => {
    server = await startMailroom({
      logLines: lines,
      env: { MAILROOM_LOG_LEVEL: "debug", MAILROOM_METRICS_TOKEN: METRICS_TOKEN },
    });
  });
  after(async () => {
    await server?.close();
  });

  test("every answer carries an X-Request-Id, and one debug line per request names it", async () => {
    const sent = await sendEmail(server, server.admin);
    assert.equal(sent.status, 200);
    const id = sent.headers.get("x-request-id") ?? "";
    assert.match(id, SERVER_ID);
    const line = await requestLine(id);
    assert.equal(line.level, 20, "debug");
    assert.equal(line.method, "POST");
    assert.equal(line.status, 200);
    assert.equal(line.route, `${API}/Accounts/:accountSid/Email/Messages`);
    assert.equal(line.path, `${API}/Accounts/${server.admin.sid}/Email/Messages.json`);
    assert.equal(line.actor, server.admin.sid);
    assert.equal(typeof line.ms, "number");

    // Errors too: a failed login (empty 401), no such route, a refused parameter.
    const refusals = [
      await request(server, "GET", `${API}/Accounts/${server.admin.sid}.json`, {
        auth: { user: server.admin.sid, token: "wrong" },
      }),
      await request(server, "GET", "/no/such/route"),
      await request(server, "GET", "/healthz?x=1"),
    ];
    const ids = new Set<string>();
    for (const response of refusals) {
      const refusedId = response.headers.get("x-request-id") ?? "";
      assert.match(refusedId, SERVER_ID, `${response.status} carries a request id`);
      ids.add(refusedId);
      assert.equal((await requestLine(refusedId)).status, response.status);
    }
    assert.equal(ids.size, refusals.length, "each request has an id of its own");
    assert.equal((await requestLine([...ids][1] as string)).route, "unmatched");
  });

  test("a plain X-Request-Id from the client (or its proxy) is kept; anything else is replaced", async () => {
    const given = "lb-7f3a.2026:42_x";
    const kept = await request(server, "GET", "/healthz", { headers: { "x-request-id": given } });
    assert.equal(kept.headers.get("x-request-id"), given);
    assert.equal((await requestLine(given)).path, "/healthz");

    for (const bad of ["has space", "x".repeat(129), 'quote"', "new\\nline"]) {
      const replaced = await request(server, "GET", "/healthz", { headers: { "x-request-id": bad } });
      assert.match(
        replaced.headers.get("x-request-id") ?? "",
        SERVER_ID,
        `${JSON.stringify(bad)} is replaced`,
      );
    }
  });

  test("no secret reaches the log: AuthTokens, Basic credentials, the metrics token, query strings", async () => {
    const account = await server.createAccount("secretive@example.org", server.admin.sid);
    const secrets = [
      server.admin.token,
      account.token,
      basicAuth(server.admin).slice("Basic ".length),
      basicAuth(account).slice("Basic ".length),
      METRICS_TOKEN,
    ];
    const ids: string[] = [];
    const track = (response: { headers: Headers }) => ids.push(response.headers.get("x-request-id") ?? "");
    track(await sendEmail(server, account));
    track(await request(server, "GET", `${API}/Accounts/${account.sid}.json`, { auth: account }));
    // A password set and a token rotated through the API: in the request and the answer, never in the log.
    const password = "correct-horse-battery-staple";
    secrets.push(password);
    const rotated = await request(server, "POST", `${API}/Accounts/${account.sid}.json`, {
      auth: server.admin,
      form: { RotateAuthToken: "true", Password: password },
    });
    assert.equal(rotated.status, 200, rotated.text);
    assert.equal(typeof rotated.json.auth_token, "string");
    secrets.push(rotated.json.auth_token);
    track(rotated);
    track(
      await request(server, "GET", "/metrics", { headers: { authorization: `Bearer ${METRICS_TOKEN}` } }),
    );
    track(
      await request(server, "GET", "/metrics", {
        headers: { authorization: `Bearer ${METRICS_TOKEN}-wrong` },
      }),
    );
    // A client that puts a secret in a query string: the line has the path, not the query.
    track(await request(server, "GET", `/healthz?AuthToken=${server.admin.token}`));
    for (const id of ids) await requestLine(id);

    // The logger censors fields named after secrets (and a webhook's secret), whatever a future line logs.
    server.mailroom.logger.info(
      {
        password: "hunter2-password",
        webhook: { secret: "whsec_censored-secret" },
        authToken: account.token,
      },
      "a careless line",
    );
    const careless = lines.find((line) => line.msg === "a careless line");
    assert.equal(careless?.password, "[Redacted]");
    assert.deepEqual(careless?.webhook, { secret: "[Redacted]" });

    const everything = JSON.stringify(lines);
    for (const secret of [...secrets, "hunter2-password", "whsec_censored-secret"]) {
      assert.ok(!everything.includes(secret), `the log does not contain ${secret.slice(0, 6)}…`);
    }
    assert.ok(lines.filter((line) => line.msg === "request").length >= ids.length);
  });
});
