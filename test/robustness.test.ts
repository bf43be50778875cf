import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { API, basicAuth, request, startMailroom, type TestServer } from "./helpers/mailroom.js";
import { storeVariants } from "./helpers/stores.js";

/** Odd values a client might send; none of them may produce a 500. */
const ODD_VALUES: unknown[] = [
  null,
  true,
  0,
  -1,
  Number.MAX_SAFE_INTEGER * 1000,
  "",
  " ",
  "\u0000",
  "\r\n",
  "%",
  "é".repeat(300),
  "<script>",
  "a@b@c",
  "\ud800",
  [],
  ["a@example.org", 5],
  [["nested@example.org"]],
  {},
  { address: "a@example.org" },
];
const FIELDS = ["From", "To", "Body", "Subject", "Type", "CC", "BCC", "StatusCallback"];

for (const variant of await storeVariants()) {
  describe(`no client input produces a 500 (${variant.kind})`, { skip: variant.skip }, () => {
    let server: TestServer;
    before(async () => {
      server = await startMailroom({ store: variant.kind });
    });
    after(async () => {
      await server?.close();
    });

    test("every field of a send, set to odd JSON values", async () => {
      const base = { From: "a@example.org", To: "b@example.org", Body: "x", Subject: "y" };
      for (const field of FIELDS) {
        for (const value of ODD_VALUES) {
          const response = await request(
            server,
            "POST",
            `${API}/Accounts/${server.admin.sid}/Email/Messages.json`,
            {
              auth: server.admin,
              json: { ...base, [field]: value },
            },
          );
          assert.ok(
            response.status < 500,
            `${field}=${JSON.stringify(value)} gave ${response.status}: ${response.text}`,
          );
          if (response.status !== 200) assert.equal(typeof response.json.code, "number");
        }
      }
    });

    test("odd URLs, query strings, headers and bodies", async () => {
      const auth = basicAuth(server.admin);
      const messages = `${API}/Accounts/${server.admin.sid}/Email/Messages`;
      const attempts: Array<[string, string, Record<string, string>, string | undefined]> = [
        ["GET", `${messages}.json?Page=1&Page=2`, {}, undefined],
        ["GET", `${messages}.json?PageSize=99999999999999999999`, {}, undefined],
        ["GET", `${messages}.json?To=%E0%A4%A`, {}, undefined],
        ["GET", `${messages}/%E0%A4%A.json`, {}, undefined],
        ["GET", `${messages}.json?StartTime[]=x`, {}, undefined],
        ["GET", `${API}/Accounts/%00/Email/Messages.json`, {}, undefined],
        ["GET", `${API}/Accounts/a%00@example.org.json`, {}, undefined],
        ["GET", `${messages}/EM%00.json`, {}, undefined],
        ["GET", `${messages}.json?To=a%00b`, {}, undefined],
        ["GET", `${messages}.json?From=%00`, {}, undefined],
        ["GET", `${API}/Accounts/${"A".repeat(5000)}.json`, {}, undefined],
        ["POST", `${messages}.json`, { "content-type": "application/json" }, ""],
        ["POST", `${messages}.json`, { "content-type": "application/json" }, "null"],
        ["POST", `${messages}.json`, { "content-type": "application/json" }, '"text"'],
        ["POST", `${messages}.json`, { "content-type": "application/x-www-form-urlencoded" }, "%%%&&&==="],
        ["POST", `${messages}.json`, { "content-type": "multipart/form-data; boundary=x" }, "--x--"],
        [
          "POST",
          `${API}/Accounts.json`,
          { "content-type": "application/json" },
          '{"EmailAddress":["a","b"]}',
        ],
        [
          "PUT",
          `${API}/Accounts/${server.admin.sid}.json`,
          { "content-type": "application/json" },
          '{"Status":{}}',
        ],
        ["DELETE", `${API}/Accounts/${server.admin.sid}.json`, {}, undefined],
      ];
      for (const [method, path, headers, body] of attempts) {
        const response = await fetch(server.url + path, {
          method,
          headers: { authorization: auth, ...headers },
          body,
        });
        const text = await response.text();
        assert.ok(
          response.status < 500,
          `${method} ${path.slice(0, 80)} ${body ?? ""} gave ${response.status}: ${text}`,
        );
      }
      for (const header of [
        "Basic",
        "Basic ",
        "Basic Og==",
        "Basic \u00ff\u00fe",
        `Basic ${Buffer.from(":").toString("base64")}`,
        `Basic ${Buffer.from(`AC\u0000x:${server.admin.token}`).toString("base64")}`,
        `Basic ${Buffer.from(`a\u0000@example.org:${server.admin.token}`).toString("base64")}`,
      ]) {
        const response = await fetch(`${server.url}${messages}.json`, { headers: { authorization: header } });
        assert.equal(response.status, 401, header);
      }
    });
  });
}
