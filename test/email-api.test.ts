import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { API, request, sendEmail, startMailroom, type TestServer } from "./helpers/mailroom.js";
import { storeVariants } from "./helpers/stores.js";

const run = promisify(execFile);

for (const variant of await storeVariants()) {
  describe(`Email API (${variant.kind})`, { skip: variant.skip }, () => {
    let server: TestServer;
    before(async () => {
      server = await startMailroom({ store: variant.kind });
    });
    after(async () => {
      await server?.close();
    });
    const messages = (sid: string) => `${API}/Accounts/${sid}/Email/Messages`;

    test("the Restcomm documentation's example returns 200 with Restcomm's fields first", async () => {
      const response = await sendEmail(server, server.admin);
      assert.equal(response.status, 200);
      const keys = Object.keys(response.json);
      assert.deepEqual(keys.slice(0, 6), ["date_sent", "account_sid", "from", "to", "body", "subject"]);
      assert.match(response.json.date_sent, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
      assert.equal(response.json.account_sid, server.admin.sid);
      assert.equal(response.json.from, "jane.doe@yourcompany.com");
      assert.equal(response.json.to, "john.doe@yourcompany.com");
      assert.equal(response.json.body, "This is a test");
      assert.equal(response.json.subject, "Test Email");
      assert.match(response.json.sid, /^EM[0-9a-f]{32}$/);
      assert.equal(response.json.status, "queued");
      assert.equal(response.json.next_attempt, response.json.date_created, "due at once");
      assert.equal(response.json.type, "text/plain; charset=UTF-8");
      assert.equal(response.json.api_version, "2012-04-24");
      assert.equal(response.json.uri, `${messages(server.admin.sid)}/${response.json.sid}.json`);
      assert.ok(!("cc" in response.json), "null fields are left out of JSON");
    });

    test("the seed's curl command works unchanged (XML by default)", async (t) => {
      const curl = await run("curl", ["--version"]).catch(() => undefined);
      if (!curl) return t.skip("curl is not installed");
      const { stdout } = await run("curl", [
        "-s",
        "-w",
        "\\n%{http_code}",
        "-X",
        "POST",
        `${server.url}${messages(server.admin.sid)}`,
        "-d",
        "To=john.doe@yourcompany.com",
        "-d",
        "From=jane.doe@yourcompany.com",
        "-d",
        "Body=This is a test",
        "-d",
        "Subject=Test Email",
        "-u",
        `${server.admin.sid}:${server.admin.token}`,
      ]);
      const [body, status] = stdout.split("\n");
      assert.equal(status, "200");
      assert.match(body ?? "", /^<RestcommResponse><EmailMessage><DateSent>[^<]+<\/DateSent><AccountSid>AC/);
      assert.match(
        body ?? "",
        /<To>john\.doe@yourcompany\.com<\/To><Body>This is a test<\/Body><Subject>Test Email<\/Subject>/,
      );
    });

    test("send, get and list round-trip in JSON", async () => {
      const sent = await sendEmail(server, server.admin, {
        To: "a@example.org, B Person <b@example.org>",
        CC: "c@example.org",
        BCC: "d@example.org",
        Type: "text/html",
        Body: "<p>Hello</p>",
      });
      assert.equal(sent.status, 200);
      assert.equal(sent.json.to, "a@example.org, B Person <b@example.org>");
      assert.equal(sent.json.cc, "c@example.org");
      assert.equal(sent.json.bcc, "d@example.org");
      assert.equal(sent.json.type, "text/html; charset=UTF-8");

      // The worker may have delivered it meanwhile: everything but the delivery state is as accepted.
      const stable = (m: Record<string, unknown>) => {
        const { status, num_attempts, date_updated, date_delivered, next_attempt, ...rest } = m;
        return rest;
      };
      const got = await request(server, "GET", `${messages(server.admin.sid)}/${sent.json.sid}.json`, {
        auth: server.admin,
      });
      assert.equal(got.status, 200);
      assert.deepEqual(stable(got.json), stable(sent.json));

      const listed = await request(server, "GET", `${messages(server.admin.sid)}.json?To=b@example.org`, {
        auth: server.admin,
      });
      assert.equal(listed.status, 200);
      assert.equal(listed.json.total, 1);
      assert.deepEqual(stable(listed.json.messages[0]), stable(sent.json));
    });

    test("send, get and list round-trip in XML, and Accept: application/json selects JSON", async () => {
      const sent = await sendEmail(server, server.admin, { Subject: "xml & <friends>" }, "xml");
      assert.equal(sent.status, 200);
      assert.match(sent.headers.get("content-type") ?? "", /application\/xml/);
      const sid = /<Sid>(EM[0-9a-f]{32})<\/Sid>/.exec(sent.text)?.[1];
      assert.ok(sid, sent.text);
      assert.match(sent.text, /<Subject>xml &amp; &lt;friends&gt;<\/Subject>/);

      const got = await request(server, "GET", `${messages(server.admin.sid)}/${sid}`, {
        auth: server.admin,
      });
      assert.match(got.text, new RegExp(`^<RestcommResponse><EmailMessage><DateSent>.*<Sid>${sid}</Sid>`));
      const list = await request(server, "GET", `${messages(server.admin.sid)}?PageSize=1`, {
        auth: server.admin,
      });
      assert.match(
        list.text,
        /^<RestcommResponse><EmailMessages page="0" numpages="\d+" pagesize="1" total="\d+"/,
      );
      assert.match(list.text, new RegExp(`<EmailMessage><DateSent>[^<]+</DateSent>.*<Sid>${sid}</Sid>`));

      const viaAccept = await request(server, "GET", `${messages(server.admin.sid)}/${sid}`, {
        auth: server.admin,
        headers: { accept: "application/json" },
      });
      assert.equal(viaAccept.json.sid, sid);
      const dotJsonAnywhere = await request(
        server,
        "GET",
        `${API}/Accounts.json/${server.admin.sid}/Email/Messages/${sid}`,
        {
          auth: server.admin,
        },
      );
      assert.equal(dotJsonAnywhere.json.sid, sid);
    });

    test("a JSON body is accepted as an extension, with To as an array", async () => {
      const response = await request(server, "POST", `${messages(server.admin.sid)}.json`, {
        auth: server.admin,
        json: { From: "x@example.org", To: ["y@example.org", "z@example.org"], Subject: "json", Body: "b" },
      });
      assert.equal(response.status, 200);
      assert.equal(response.json.to, "y@example.org, z@example.org");
    });

    test("non-ASCII subject and body round-trip unchanged", async () => {
      const subject = "Grüße aus Köln — 你好 🎉";
      const body = "Ünïcødé body\nwith lines\r\nand emoji 📬";
      const sent = await sendEmail(server, server.admin, {
        Subject: subject,
        Body: body,
        From: "Zoë Ölund <zoe@example.org>",
      });
      assert.equal(sent.status, 200);
      const got = await request(server, "GET", `${messages(server.admin.sid)}/${sent.json.sid}.json`, {
        auth: server.admin,
      });
      assert.equal(got.json.subject, subject);
      assert.equal(got.json.body, body);
      assert.equal(got.json.from, '"Zoë Ölund" <zoe@example.org>');
      const xml = await request(server, "GET", `${messages(server.admin.sid)}/${sent.json.sid}`, {
        auth: server.admin,
      });
      assert.ok(xml.text.includes(`<Subject>${subject}</Subject>`));
    });

    test("required parameters are checked in Restcomm's order with Restcomm's messages", async () => {
      const all = { From: "a@example.org", To: "b@example.org", Body: "x", Subject: "y" };
      const cases: Array<[string[], string, number]> = [
        [["From", "To", "Body", "Subject"], "From can not be null.", 13001],
        [["To", "Body", "Subject"], "To can not be null.", 13002],
        [["Body", "Subject"], "Body can not be null.", 13003],
        [["Subject"], "Subject can not be null.", 13004],
      ];
      for (const [missing, message, code] of cases) {
        const form = Object.fromEntries(Object.entries(all).filter(([key]) => !missing.includes(key)));
        const response = await request(server, "POST", `${messages(server.admin.sid)}.json`, {
          auth: server.admin,
          form,
        });
        assert.equal(response.status, 400, message);
        assert.deepEqual(response.json, {
          status: 400,
          code,
          message,
          more_info: `/restcomm/errors/${code}.html`,
        });
      }
      const xml = await request(server, "POST", messages(server.admin.sid), { auth: server.admin, form: {} });
      assert.equal(xml.status, 400);
      assert.equal(
        xml.text,
        "<RestcommResponse><RestException><Status>400</Status><Code>13001</Code><Message>From can not be null.</Message><MoreInfo>/restcomm/errors/13001.html</MoreInfo></RestException></RestcommResponse>",
      );
    });

    test("invalid addresses are refused with the field named; nothing is dropped silently", async () => {
      const cases: Array<[Record<string, string>, number, RegExp]> = [
        [{ From: "not-an-address" }, 13010, /From is invalid/],
        [{ From: "a@example.org, b@example.org" }, 13010, /exactly one/],
        [{ To: "john@" }, 13011, /To is invalid/],
        [{ To: "good@example.org, bad" }, 13011, /"bad" is not a valid email address/],
        [{ To: "x@localhost" }, 13011, /To is invalid/],
        [{ CC: "c@@example.org" }, 13012, /CC is invalid/],
        [{ BCC: "group: a@example.org;" }, 13013, /groups/],
      ];
      for (const [fields, code, message] of cases) {
        const response = await sendEmail(server, server.admin, fields);
        assert.equal(response.status, 400, JSON.stringify(fields));
        assert.equal(response.json.code, code, JSON.stringify(fields));
        assert.match(response.json.message, message);
      }
    });

    test("CR/LF or other control characters in any header-bound field are refused", async () => {
      for (const field of ["From", "To", "CC", "BCC", "Subject", "Type"]) {
        for (const evil of ["\r\nBcc: victim@example.org", "\nX-Injected: 1", "\r"]) {
          const base = field === "Type" ? "text/plain" : field === "Subject" ? "Hi" : "a@example.org";
          const response = await sendEmail(server, server.admin, { [field]: `${base}${evil}` });
          assert.equal(response.status, 400, `${field} ${JSON.stringify(evil)}`);
          assert.equal(response.json.code, 13015, `${field}: ${response.json.message}`);
          assert.match(response.json.message, new RegExp(`^${field} contains a line break`));
        }
      }
      const body = await sendEmail(server, server.admin, {
        Body: "line one\r\nBcc: not-a-header@example.org\r\n",
      });
      assert.equal(body.status, 200, "line breaks belong in a body");
    });

    test("a subject over 160 characters is a clear 400, never truncated", async () => {
      const ok = await sendEmail(server, server.admin, { Subject: "é".repeat(160) });
      assert.equal(ok.status, 200);
      assert.equal(ok.json.subject, "é".repeat(160));
      const tooLong = await sendEmail(server, server.admin, { Subject: "x".repeat(161) });
      assert.equal(tooLong.status, 400);
      assert.equal(tooLong.json.code, 13014);
      assert.match(tooLong.json.message, /161 characters long; the maximum is 160/);
    });

    test("Type accepts text/plain and text/html only, adding charset=UTF-8", async () => {
      const plain = await sendEmail(server, server.admin, { Type: "text/plain; charset=utf-8" });
      assert.equal(plain.json.type, "text/plain; charset=UTF-8");
      for (const type of ["application/pdf", "text/html; charset=iso-8859-1", "text/html; boundary=x"]) {
        const response = await sendEmail(server, server.admin, { Type: type });
        assert.equal(response.status, 400, type);
        assert.equal(response.json.code, 13016, type);
      }
    });

    test("over 100 recipients in all is refused", async () => {
      const many = Array.from({ length: 101 }, (_, i) => `r${i}@example.org`).join(", ");
      const response = await sendEmail(server, server.admin, { To: many });
      assert.equal(response.status, 400);
      assert.equal(response.json.code, 13017);
    });

    test("an oversized body is 413, an unknown content type 415, unknown routes 404, bad JSON 400", async () => {
      const big = await sendEmail(server, server.admin, { Body: "x".repeat(15 * 1024 * 1024) });
      assert.equal(big.status, 413);
      assert.equal(big.json.code, 20002);
      const text = await request(server, "POST", `${messages(server.admin.sid)}.json`, {
        auth: server.admin,
        body: "From=a",
        headers: { "content-type": "text/plain" },
      });
      assert.equal(text.status, 415);
      assert.equal(text.json.code, 20003);
      const nowhere = await request(server, "GET", `${API}/Nothing.json`, { auth: server.admin });
      assert.equal(nowhere.status, 404);
      assert.equal(nowhere.json.code, 20004);
      const badJson = await request(server, "POST", `${messages(server.admin.sid)}.json`, {
        auth: server.admin,
        body: "{not json",
        headers: { "content-type": "application/json" },
      });
      assert.equal(badJson.status, 400);
      assert.equal(badJson.json.code, 20001);
      const arrayJson = await request(server, "POST", `${messages(server.admin.sid)}.json`, {
        auth: server.admin,
        json: [1],
      });
      assert.equal(arrayJson.status, 400);
      assert.equal(arrayJson.json.code, 20001);
    });

    test("a message that does not exist is 404 with code 13020", async () => {
      const response = await request(
        server,
        "GET",
        `${messages(server.admin.sid)}/EM00000000000000000000000000000000.json`,
        {
          auth: server.admin,
        },
      );
      assert.equal(response.status, 404);
      assert.equal(response.json.code, 13020);
    });

    test("more_info links resolve to an explanation page", async () => {
      const page = await request(server, "GET", "/restcomm/errors/13001.html");
      assert.equal(page.status, 200);
      assert.match(page.text, /13001: From Missing/);
      const delivery = await request(server, "GET", "/restcomm/errors/13101.html");
      assert.match(delivery.text, /13101: Message Rejected/);
      assert.equal((await request(server, "GET", "/restcomm/errors/99999.html")).status, 404);
    });

    test("health and readiness", async () => {
      assert.equal((await request(server, "GET", "/healthz")).status, 200);
      const ready = await request(server, "GET", "/readyz");
      assert.equal(ready.status, 200);
      assert.equal(ready.json.store, variant.kind);
    });
  });
}
