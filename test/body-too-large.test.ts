import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { startMailroom, type TestServer } from "./helpers/mailroom.js";
import { rawFormSend } from "./helpers/raw-http.js";
import { storeVariants } from "./helpers/stores.js";

const LIMIT = 65_536;

for (const variant of await storeVariants()) {
  describe(`a body over the limit, sent whole before the answer is read (${variant.kind})`, {
    skip: variant.skip,
  }, () => {
    let server: TestServer;

    before(async () => {
      server = await startMailroom({ store: variant.kind, env: { MAILROOM_BODY_LIMIT: String(LIMIT) } });
    });
    after(() => server?.close());

    /** Sends `size` bytes of form body as Python's urllib does: all of it, and only then reads. */
    async function sendWhole(size: number, framing: "content-length" | "chunked") {
      const client = rawFormSend(server, framing === "chunked" ? "chunked" : size);
      try {
        client.pauseReading();
        const body = Buffer.alloc(size, "x");
        const written =
          framing === "chunked"
            ? await client.write(
                Buffer.concat([Buffer.from(`${size.toString(16)}\r\n`), body, Buffer.from("\r\n0\r\n\r\n")]),
              )
            : await client.write(body);
        const answer = await client.response();
        return { written, answer, error: client.error };
      } finally {
        client.close();
      }
    }

    for (const framing of ["content-length", "chunked"] as const) {
      test(`a 4 MB body (${framing}) gets its 413, readable after the whole body was sent`, async () => {
        const { written, answer, error } = await sendWhole(4 * 1024 * 1024, framing);
        assert.equal(error, undefined, `the connection failed: ${error?.message}`);
        assert.ok(written, "the whole body was written");
        assert.equal(answer?.status, 413);
        assert.equal(JSON.parse(answer?.body ?? "{}").code, 20002);
      });
    }
  });
}
