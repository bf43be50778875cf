import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { readEmailRequest } from "../src/model/email-message.js";
import { EmailMessageService } from "../src/services/email-messages.js";
import { openStore } from "../src/store/open-store.js";
import { waitForFinal } from "./helpers/delivery.js";
import { sendEmail, startMailroom, type TestServer } from "./helpers/mailroom.js";
import { storeVariants } from "./helpers/stores.js";

// Longer than any test here: whatever gets delivered was woken up, not found by polling.
const NEVER_POLL = { MAILROOM_POLL_INTERVAL_MS: "600000" };

for (const variant of await storeVariants()) {
  describe(`worker wake-ups (${variant.kind})`, { skip: variant.skip }, () => {
    let server: TestServer;
    before(async () => {
      server = await startMailroom({ store: variant.kind, env: NEVER_POLL });
    });
    after(async () => {
      await server?.close();
    });

    test("an accepted message is delivered at once, not at the next poll", async () => {
      const accepted = (await sendEmail(server, server.admin)).json;
      assert.equal((await waitForFinal(server, server.admin, accepted.sid)).status, "sent");
    });

    test("a message accepted by another process is delivered at once", {
      skip: variant.kind === "sqlite",
    }, async () => {
      // A second store on the same database, as another Mailroom process (or the CLI) would have.
      const other = openStore({
        dataDir: server.dataDir,
        databaseUrl: server.databaseUrl,
        databasePoolSize: 1,
      });
      try {
        // No worker in this "process": the message is queued unleased, for the server's worker to claim.
        const queueOnly = { reserve: () => null, handOff() {}, cancel() {}, wake() {} };
        const service = new EmailMessageService(other, queueOnly, {
          maxMessageBytes: 1024,
          blockedExtensions: [],
        });
        const message = await service.accept(
          server.admin.sid,
          readEmailRequest({
            From: "jane@sender.example",
            To: "john@rcpt.example",
            Body: "from elsewhere",
            Subject: "woken through the store",
          }),
        );
        assert.equal((await waitForFinal(server, server.admin, message.sid)).status, "sent");
      } finally {
        await other.close();
      }
    });
  });

  describe(`an idle worker (${variant.kind})`, { skip: variant.skip }, () => {
    test("looks at the queue about once per poll interval, not in a loop", async () => {
      const server = await startMailroom({ store: variant.kind, env: { MAILROOM_POLL_INTERVAL_MS: "200" } });
      try {
        const { store } = server.mailroom;
        let claims = 0;
        const claimDue = store.claimDue.bind(store);
        store.claimDue = (...args) => {
          claims++;
          return claimDue(...args);
        };
        await sleep(1000);
        assert.ok(claims >= 2 && claims <= 10, `${claims} claims in one second with a 200 ms poll interval`);
      } finally {
        await server.close();
      }
    });
  });
}
