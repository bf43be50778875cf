import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { API, request, sendEmail, startMailroom, type TestServer } from "./helpers/mailroom.js";
import { rawFormSend } from "./helpers/raw-http.js";
import { storeVariants } from "./helpers/stores.js";
import { waitFor } from "./helpers/wait.js";

/** A form send whose Body makes it `size` bytes long. */
function formOfSize(size: number): string {
  const head = "From=jane%40example.com&To=john%40example.com&Subject=large&Body=";
  return head + "x".repeat(size - head.length);
}

/** Waits until the server has admitted a body (authenticated, its bytes taken from the budget). */
function admitted(server: TestServer) {
  const app = server.mailroom.app as unknown as { bodyBudget: { inUse: number } };
  return waitFor("a body admitted", () => app.bodyBudget.inUse > 0);
}

for (const variant of await storeVariants()) {
  describe(`request bodies share a memory budget (${variant.kind})`, { skip: variant.skip }, () => {
    let server: TestServer;

    before(async () => {
      server = await startMailroom({
        store: variant.kind,
        // Room for one 40 KB body at a time, and a short wait for it.
        env: { MAILROOM_BODY_MEMORY: "65536", MAILROOM_BODY_WAIT_MS: "300" },
      });
    });
    after(() => server?.close());

    test("a body that does not fit while another is read waits, then gets 503 with Retry-After (20020)", async () => {
      const body = formOfSize(40_000);
      const path = `${API}/Accounts/${server.admin.sid}/Email/Messages.json`;
      // The first body is only half sent: its bytes stay reserved while it is read.
      const first = rawFormSend(server, body.length);
      try {
        await first.write(body.slice(0, 20_000));
        await admitted(server);

        const second = await request(server, "POST", path, {
          auth: server.admin,
          body,
          headers: { "content-type": "application/x-www-form-urlencoded" },
        });
        assert.equal(second.status, 503, second.text);
        assert.equal(second.json.code, 20020);
        assert.match(second.json.message, /MAILROOM_BODY_MEMORY/);
        assert.ok(Number(second.headers.get("retry-after")) >= 1, "Retry-After in seconds");

        // A request without a body never waits for the budget.
        const listed = await request(
          server,
          "GET",
          `${API}/Accounts/${server.admin.sid}/Email/Messages.json`,
          {
            auth: server.admin,
          },
        );
        assert.equal(listed.status, 200);

        await first.write(body.slice(20_000));
        const answer = await first.response();
        assert.equal(answer?.status, 200, answer?.body);
      } finally {
        first.close();
      }
      // Its bytes were given back: the next large body is admitted at once.
      const third = await sendEmail(server, server.admin, { Body: "x".repeat(40_000) });
      assert.equal(third.status, 200, third.text);
    });
  });

  describe(`a body waiting for room (${variant.kind})`, { skip: variant.skip }, () => {
    let server: TestServer;

    before(async () => {
      server = await startMailroom({
        store: variant.kind,
        env: { MAILROOM_BODY_MEMORY: "65536", MAILROOM_BODY_WAIT_MS: "30000" },
      });
    });
    after(() => server?.close());

    test("is admitted when the body before it is done", async () => {
      const body = formOfSize(40_000);
      const path = `${API}/Accounts/${server.admin.sid}/Email/Messages.json`;
      const first = rawFormSend(server, body.length);
      try {
        await first.write(body.slice(0, 20_000));
        await admitted(server);
        const second = request(server, "POST", path, {
          auth: server.admin,
          body,
          headers: { "content-type": "application/x-www-form-urlencoded" },
        });
        await first.write(body.slice(20_000));
        assert.equal((await first.response())?.status, 200);
        assert.equal((await second).status, 200);
      } finally {
        first.close();
      }
    });
  });
}
