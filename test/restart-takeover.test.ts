import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { runCli, type ServeProcess, startServeProcess } from "./helpers/cli.js";
import { type Credentials, sendEmail } from "./helpers/mailroom.js";
import { createTestSchema } from "./helpers/postgres.js";
import { SmtpSink } from "./helpers/smtp-sink.js";
import { storeVariants } from "./helpers/stores.js";
import { waitFor } from "./helpers/wait.js";

// Far below the default lease (120 s): mail that arrives within this was taken over, not waited for.
const ARRIVAL_BOUND_MS = 60_000;

async function createAccount(env: Record<string, string>): Promise<Credentials> {
  const created = await runCli(["accounts", "create", "--email", "takeover@test.example"], env);
  assert.equal(created.code, 0, created.stderr);
  const account = JSON.parse(created.stdout) as { sid: string; auth_token: string };
  return { sid: account.sid, token: account.auth_token };
}

async function kill(server: ServeProcess | undefined): Promise<void> {
  if (!server || server.child.exitCode !== null || server.child.signalCode !== null) return;
  server.child.kill("SIGKILL");
  await server.exited;
}

describe("one server per SQLite data dir", () => {
  test("a second serve on the same data dir exits with a clear message; the accounts commands still work", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "mailroom-lock-"));
    const env = { MAILROOM_DATA_DIR: dataDir };
    let first: ServeProcess | undefined;
    try {
      first = await startServeProcess(env);
      const second = await runCli(["serve"], { ...env, MAILROOM_PORT: "0", MAILROOM_HOST: "127.0.0.1" });
      assert.equal(second.code, 1, `the second serve must not run: ${second.stdout}`);
      assert.match(second.stderr, /another Mailroom server is running on the data dir/);
      assert.match(second.stderr, /mailroom\.lock/);
      await createAccount(env);
      const health = await fetch(`${first.url}/readyz`);
      assert.equal(health.status, 200, "the first server carries on");

      // kill -9 leaves no lock behind: the OS drops it with the process.
      await kill(first);
      first = await startServeProcess(env);
      first.child.kill("SIGTERM");
      assert.equal(await first.exited, 0);
    } finally {
      await kill(first);
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

for (const variant of await storeVariants()) {
  describe(`restart after kill -9 (${variant.kind})`, { skip: variant.skip }, () => {
    test("mail that was in flight is delivered within seconds, not when its lease runs out", async (t) => {
      const dataDir = await mkdtemp(join(tmpdir(), "mailroom-takeover-"));
      const schema = variant.kind === "postgres" ? await createTestSchema() : undefined;
      // A relay that never answers the first process: its deliveries are mid-DATA when it dies, and
      // none of them counts as arrived (the answer would come after the test).
      const sink = await SmtpSink.start({ rules: { dataDelayMs: 600_000 } });
      // The default lease (120 s) and heartbeat timeout (15 s): what an operator gets.
      const env: Record<string, string> = {
        MAILROOM_DATA_DIR: dataDir,
        ...(schema ? { MAILROOM_DATABASE_URL: schema.url } : {}),
        MAILROOM_SMTP_URL: sink.url,
        MAILROOM_DELIVERY_CONCURRENCY: "4",
      };
      let server: ServeProcess | undefined;
      try {
        const auth = await createAccount(env);
        server = await startServeProcess(env);
        const sent: string[] = [];
        for (let i = 0; i < 6; i++) {
          const response = await sendEmail(server, auth, { Subject: `in flight ${i}` });
          assert.equal(response.status, 200, response.text);
          sent.push(response.json.message_id);
        }
        await waitFor("deliveries in flight at the relay", () => sink.unanswered >= 4);
        await kill(server);
        sink.rules = {};

        // PostgreSQL: a restarted process is another owner, as a second node would be.
        const restartedAt = Date.now();
        server = await startServeProcess(env);
        await waitFor(
          "every message at the relay",
          () => sent.every((id) => sink.count(id) >= 1),
          ARRIVAL_BOUND_MS,
        );
        const tookMs = Date.now() - restartedAt;
        t.diagnostic(`every message at the relay ${tookMs} ms after the restart began`);
        assert.ok(tookMs < ARRIVAL_BOUND_MS);
      } finally {
        await kill(server);
        await sink.stop();
        await schema?.drop();
        await rm(dataDir, { recursive: true, force: true });
      }
    });
  });
}
