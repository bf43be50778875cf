import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { API, request, sendEmail, startMailroom, type TestServer } from "./helpers/mailroom.js";
import { storeVariants } from "./helpers/stores.js";

for (const variant of await storeVariants()) {
  describe(`Email API send/get/list (${variant.kind})`, { skip: variant.skip }, () => {
    let server: TestServer;
    before(async () => {
      server = await startMailroom({ store: variant.kind });
    });
    after(async () => {
      await server?.close();
    });

    test("the Restcomm documentation's example returns 200 with Restcomm's fields first", async () => {
      const response = await sendEmail(server, server.admin);
      assert.equal(response.status, 200);
      const keys = Object.keys(response.json);
      assert.deepEqual(keys.slice(0, 6), ["date_sent", "account_sid", "from", "to", "body", "subject"]);
      assert.match(response.json.date_sent, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
      assert.equal(response.json.account_sid, server.admin.sid);
      assert.equal(response.json.to, "john.doe@yourcompany.com");
      assert.equal(response.json.subject, "Test Email");
      assert.match(response.json.sid, /^EM[0-9a-f]{32}$/);
      assert.equal(response.json.status, "queued");
    });
  });
}
