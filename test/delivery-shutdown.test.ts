import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { FAST_RETRIES, getMessage, waitForFinal } from "./helpers/delivery.js";
import { type Credentials, sendEmail, startMailroom, type TestServer } from "./helpers/mailroom.js";
import { createTestSchema } from "./helpers/postgres.js";
import { SmtpSink } from "./helpers/smtp-sink.js";
import { type StoreKind, storeVariants } from "./helpers/stores.js";
import { waitFor } from "./helpers/wait.js";

/** A data dir (and for PostgreSQL a schema) that outlives one server, so a second one can restart on it. */
async function persistentStore(kind: StoreKind) {
  const dataDir = await mkdtemp(join(tmpdir(), "mailroom-shutdown-"));
  const schema = kind === "postgres" ? await createTestSchema() : undefined;
  let admin: Credentials | undefined;
  return {
    async start(env: Record<string, string>): Promise<TestServer> {
      const server = await startMailroom({ dataDir, databaseUrl: schema?.url, keepData: true, admin, env });
      admin = server.admin;
      return server;
    },
    async remove() {
      await schema?.drop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** Waits until the relay holds the message's DATA and has not answered yet: a delivery in flight. */
async function waitUntilInFlight(sink: SmtpSink) {
  await waitFor("a delivery in flight", () => sink.unanswered > 0);
}

for (const variant of await storeVariants()) {
  describe(`graceful shutdown (${variant.kind})`, { skip: variant.skip }, () => {
    test("a delivery in flight at close finishes before the server stops", async () => {
      const sink = await SmtpSink.start({ rules: { dataDelayMs: 400 } });
      const store = await persistentStore(variant.kind);
      try {
        const env = { MAILROOM_SMTP_URL: sink.url, ...FAST_RETRIES };
        const first = await store.start(env);
        const accepted = (await sendEmail(first, first.admin)).json;
        await waitUntilInFlight(sink);
        await first.close();
        assert.equal(sink.count(accepted.message_id), 1, "delivered before close returned");

        const second = await store.start(env);
        try {
          const message = await getMessage(second, second.admin, accepted.sid);
          assert.equal(message.status, "sent");
          assert.equal(message.num_attempts, 1);
        } finally {
          await second.close();
        }
      } finally {
        await store.remove();
        await sink.stop();
      }
    });

    test("a delivery still in flight at the shutdown timeout is released and goes out at the next start", async () => {
      const sink = await SmtpSink.start({ rules: { dataDelayMs: 5000 } });
      const store = await persistentStore(variant.kind);
      try {
        // The default two-minute lease: only a released lease lets the next start deliver at once.
        const env = { MAILROOM_SMTP_URL: sink.url, ...FAST_RETRIES };
        const first = await store.start({ ...env, MAILROOM_SHUTDOWN_TIMEOUT_MS: "200" });
        const accepted = (await sendEmail(first, first.admin)).json;
        await waitUntilInFlight(sink);
        const closing = Date.now();
        await first.close();
        assert.ok(Date.now() - closing < 3000, "close waited only about the shutdown timeout");

        sink.rules = {};
        const second = await store.start(env);
        try {
          const message = await waitForFinal(second, second.admin, accepted.sid);
          assert.equal(message.status, "sent");
          assert.equal(message.num_attempts, 1, "the abandoned delivery recorded no attempt");
          assert.ok(sink.count(accepted.message_id) >= 1);
        } finally {
          await second.close();
        }
      } finally {
        await store.remove();
        await sink.stop();
      }
    });
  });
}
