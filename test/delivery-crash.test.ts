import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { openStore } from "../src/store/open-store.js";
import { createAccountWithCli, type ServeProcess, startServeProcess } from "./helpers/cli.js";
import { FAST_RETRIES, getMessage } from "./helpers/delivery.js";
import { sendEmail } from "./helpers/mailroom.js";
import { createTestSchema } from "./helpers/postgres.js";
import { SmtpSink } from "./helpers/smtp-sink.js";
import { storeVariants } from "./helpers/stores.js";
import { waitFor } from "./helpers/wait.js";

for (const variant of await storeVariants()) {
  describe(`kill -9 with deliveries in flight (${variant.kind})`, { skip: variant.skip }, () => {
    test("every acknowledged message is delivered after a restart; none is lost", async (t) => {
      const dataDir = await mkdtemp(join(tmpdir(), "mailroom-crash-"));
      const schema = variant.kind === "postgres" ? await createTestSchema() : undefined;
      // A slow relay, so that deliveries are mid-transaction when the process dies.
      const sink = await SmtpSink.start({ rules: { dataDelayMs: 300 } });
      const env: Record<string, string> = {
        MAILROOM_DATA_DIR: dataDir,
        ...(schema ? { MAILROOM_DATABASE_URL: schema.url } : {}),
        MAILROOM_HOST: "127.0.0.1",
        MAILROOM_PORT: "0",
        MAILROOM_LOG_LEVEL: "info",
        MAILROOM_SMTP_URL: sink.url,
        MAILROOM_DELIVERY_CONCURRENCY: "5",
        // A crashed process's leases run out after a second.
        MAILROOM_LEASE_MS: "1000",
        ...FAST_RETRIES,
      };
      let first: ServeProcess | undefined;
      let second: ChildProcess | undefined;
      try {
        const auth = await createAccountWithCli("crash@test.example", env);
        first = await startServeProcess(env);
        const killed = first;

        // Post from four clients until the process dies; only a 200 counts as acknowledged.
        const acknowledged: Array<{ sid: string; message_id: string }> = [];
        let posting = true;
        const client = async () => {
          while (posting && acknowledged.length < 1000) {
            try {
              const response = await sendEmail({ url: killed.url }, auth, {
                Subject: `crash ${acknowledged.length}`,
              });
              if (response.status === 200) acknowledged.push(response.json);
            } catch {
              // The server died during this request: it was never acknowledged.
            }
          }
        };
        const clients = Array.from({ length: 4 }, client);
        // Kill while the relay holds messages it has not answered yet: those are surely in flight.
        await waitFor(
          "the first deliveries, with more in flight",
          () => sink.received.length >= 5 && sink.unanswered > 0,
        );
        killed.child.kill("SIGKILL");
        await once(killed.child, "exit");
        posting = false;
        await Promise.all(clients);

        const store = openStore({ dataDir, databaseUrl: schema?.url, databasePoolSize: 1 });
        const inFlight = (await store.listEmails({ accountSid: auth.sid, status: "sending" }, 0, 1)).total;
        await store.close();
        assert.ok(inFlight > 0, "some deliveries were in flight when the process was killed");
        assert.ok(acknowledged.length > sink.received.length, "some acknowledged mail had not gone out yet");

        sink.rules = {};
        const restarted = await startServeProcess(env);
        second = restarted.child;
        await waitFor(
          "every acknowledged message at the relay",
          () => acknowledged.every((m) => sink.count(m.message_id) >= 1),
          30_000,
        );
        for (const { sid } of acknowledged) {
          const message = await getMessage({ url: restarted.url }, auth, sid);
          assert.equal(message.status, "sent", `${sid}: ${message.error_message}`);
        }
        const duplicates = acknowledged.filter((m) => sink.count(m.message_id) > 1).length;
        t.diagnostic(
          `${acknowledged.length} acknowledged, ${inFlight} in flight at the kill, ${duplicates} delivered twice (at-least-once)`,
        );

        second.kill("SIGTERM");
        const [code] = await once(second, "exit");
        assert.equal(code, 0, "SIGTERM stops the server cleanly");
        second = undefined;
      } finally {
        first?.child.kill("SIGKILL");
        second?.kill("SIGKILL");
        await sink.stop();
        await schema?.drop();
        await rm(dataDir, { recursive: true, force: true });
      }
    });
  });
}
