import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { getMessage, waitForFinal } from "./helpers/delivery.js";
import { sendEmail, startMailroom, type TestServer } from "./helpers/mailroom.js";
import { SmtpSink } from "./helpers/smtp-sink.js";
import { storeVariants } from "./helpers/stores.js";
import { waitFor } from "./helpers/wait.js";

/**
 * An accepted message goes straight to a free delivery slot of its own process (stored already
 * leased), but never ahead of older messages still waiting in the queue.
 */
for (const variant of await storeVariants()) {
  describe(`hand-off at acceptance (${variant.kind})`, { skip: variant.skip }, () => {
    let sink: SmtpSink;
    let server: TestServer;

    before(async () => {
      // A slow relay and one delivery slot: the first message holds the slot while the next arrive.
      sink = await SmtpSink.start({ rules: { dataDelayMs: 1000 } });
      server = await startMailroom({
        store: variant.kind,
        env: {
          MAILROOM_SMTP_URL: sink.url,
          MAILROOM_DELIVERY_CONCURRENCY: "1",
          // Long enough that nothing here is found by a poll: only hand-offs and wake-ups deliver.
          MAILROOM_POLL_INTERVAL_MS: "60000",
        },
      });
    });
    after(async () => {
      await server?.close();
      await sink?.stop();
    });

    const send = async (subject: string) => {
      const response = await sendEmail(server, server.admin, { Subject: subject });
      assert.equal(response.status, 200, response.text);
      assert.equal(response.json.status, "queued", "the answer shows the message as accepted");
      return response.json as { sid: string; message_id: string };
    };

    test("a free slot takes a new message at once; while it is busy, later ones wait and go out in order", async () => {
      // Which messages the worker had to claim from the queue (the others were handed over), and
      // whether its last look found the queue empty (from then on it takes new mail directly).
      const claimed: string[] = [];
      let lastClaimEmpty = false;
      const { store, worker } = server.mailroom;
      const claimDue = store.claimDue.bind(store);
      store.claimDue = async (...args) => {
        const rows = await claimDue(...args);
        claimed.push(...rows.map((row) => row.sid));
        lastClaimEmpty = rows.length === 0;
        return rows;
      };
      const queueSeenEmpty = async () => {
        lastClaimEmpty = false;
        worker.wake();
        await waitFor("the worker to find the queue empty", () => lastClaimEmpty);
      };
      await queueSeenEmpty();
      const first = await send("first");
      // Handed over: leased, so it reads `sending` although no claim ran.
      assert.equal((await getMessage(server, server.admin, first.sid)).status, "sending");
      const second = await send("second");
      const third = await send("third");
      assert.equal((await getMessage(server, server.admin, second.sid)).status, "queued");
      assert.equal((await getMessage(server, server.admin, third.sid)).status, "queued");

      for (const message of [first, second, third]) {
        assert.equal((await waitForFinal(server, server.admin, message.sid)).status, "sent");
      }
      assert.deepEqual(
        sink.received.map((received) => received.messageId),
        [first, second, third].map((message) => message.message_id),
        "delivered in the order accepted",
      );

      // Once the worker has seen the queue empty again, the next message is handed over at once.
      await queueSeenEmpty();
      const fourth = await send("fourth");
      assert.equal((await getMessage(server, server.admin, fourth.sid)).status, "sending");
      await waitFor("the fourth message at the relay", () => sink.received.length === 4);
      assert.deepEqual(
        claimed,
        [second.sid, third.sid],
        "only the messages that had to wait were claimed; the first and the fourth were handed over",
      );
    });
  });
}
