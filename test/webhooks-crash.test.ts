import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import type { StoreLocation } from "../src/store/open-store.js";
import { runCli, type ServeProcess, startServeProcess } from "./helpers/cli.js";
import { FAST_RETRIES, waitForFinal } from "./helpers/delivery.js";
import { type Credentials, sendEmail } from "./helpers/mailroom.js";
import { createTestSchema } from "./helpers/postgres.js";
import { rawQuery } from "./helpers/raw-sql.js";
import { SmtpSink } from "./helpers/smtp-sink.js";
import { storeVariants } from "./helpers/stores.js";
import { waitFor } from "./helpers/wait.js";
import { createWebhook, startReceiver, verifyDelivery } from "./helpers/webhooks.js";

for (const variant of await storeVariants()) {
  describe(`kill -9 with webhook deliveries and StatusCallbacks pending (${variant.kind})`, {
    skip: variant.skip,
  }, () => {
    test("every event and every StatusCallback is delivered after a restart", async () => {
      const dataDir = await mkdtemp(join(tmpdir(), "mailroom-webhook-crash-"));
      const schema = variant.kind === "postgres" ? await createTestSchema() : undefined;
      const location: StoreLocation = { dataDir, databaseUrl: schema?.url, databasePoolSize: 1 };
      const sink = await SmtpSink.start();
      // Nothing is answered until `up`: the first process dies with its POSTs in flight.
      let up = false;
      const receiver = await startReceiver(() => (up ? 204 : "hang"));
      const env: Record<string, string> = {
        MAILROOM_DATA_DIR: dataDir,
        ...(schema ? { MAILROOM_DATABASE_URL: schema.url } : {}),
        MAILROOM_SMTP_URL: sink.url,
        MAILROOM_WEBHOOK_ALLOW_PRIVATE: "1",
        MAILROOM_WEBHOOK_TIMEOUT_MS: "60000",
        MAILROOM_WEBHOOK_POLL_INTERVAL_MS: "100",
        // The dead process's leases run out after a second (PostgreSQL: another process takes them then).
        MAILROOM_LEASE_MS: "1000",
        ...FAST_RETRIES,
      };
      let first: ServeProcess | undefined;
      let second: ServeProcess | undefined;
      try {
        const created = await runCli(["accounts", "create", "--email", "hooks-crash@test.example"], env);
        assert.equal(created.code, 0, created.stderr);
        const account = JSON.parse(created.stdout) as { sid: string; auth_token: string };
        const auth: Credentials = { sid: account.sid, token: account.auth_token };
        first = await startServeProcess(env);
        const hook = await createWebhook({ url: first.url }, auth, `${receiver.url}/events`);
        const sids: string[] = [];
        for (let i = 0; i < 8; i++) {
          const sent = await sendEmail({ url: first.url }, auth, {
            StatusCallback: `${receiver.url}/status`,
          });
          assert.equal(sent.status, 200, sent.text);
          sids.push(sent.json.sid);
        }
        for (const sid of sids) await waitForFinal({ url: first.url }, auth, sid);
        await waitFor("POSTs in flight, unanswered", () => receiver.received.length >= 4);
        const leased = await rawQuery(
          location,
          "select sid from webhook_queue where lease_owner is not null",
        );
        assert.ok(leased.length > 0, "some jobs were leased (in flight) when the process was killed");

        first.child.kill("SIGKILL");
        await first.exited;
        up = true;
        const beforeRestart = receiver.received.length;

        second = await startServeProcess(env);
        const events = await rawQuery<{ sid: string }>(
          location,
          "select sid from email_events where account_sid = ? order by sid",
          [auth.sid],
        );
        assert.equal(events.length, 16, "accepted and sent for each message");
        await waitFor(
          "every event delivered after the restart",
          () =>
            events.every((e) =>
              receiver.received.some((r) => r.headers["webhook-id"] === e.sid && r.status === 204),
            ),
          30_000,
        );
        await waitFor(
          "every StatusCallback delivered after the restart",
          () =>
            sids.every((sid) =>
              receiver.received.some(
                (r) =>
                  r.path === "/status" &&
                  new URLSearchParams(r.body).get("MessageSid") === sid &&
                  r.status === 204,
              ),
            ),
          30_000,
        );
        assert.ok(receiver.received.length > beforeRestart);
        for (const request of receiver.received.filter((r) => r.path === "/events")) {
          verifyDelivery(hook.secret, request);
        }
        for (const request of receiver.received.filter((r) => r.path === "/status")) {
          const form = new URLSearchParams(request.body);
          assert.equal(form.get("MessageStatus"), "sent");
          assert.equal(form.get("AccountSid"), auth.sid);
        }
        await waitFor(
          "the queue empty",
          async () => (await rawQuery(location, "select sid from webhook_queue")).length === 0,
        );

        second.child.kill("SIGTERM");
        assert.equal(await second.exited, 0, "SIGTERM stops the server cleanly");
        second = undefined;
      } finally {
        first?.child.kill("SIGKILL");
        second?.child.kill("SIGKILL");
        await receiver.close();
        await sink.stop();
        await schema?.drop();
        await rm(dataDir, { recursive: true, force: true });
      }
    });
  });
}
