import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { API, type Credentials, request, startMailroom, type TestServer } from "./helpers/mailroom.js";
import { storeVariants } from "./helpers/stores.js";

const TEMPLATE_FIELDS = [
  "account_sid",
  "date_created",
  "date_updated",
  "html",
  "name",
  "sid",
  "subject",
  "text",
  "uri",
];

for (const variant of await storeVariants()) {
  describe(`templates resource (${variant.kind})`, { skip: variant.skip }, () => {
    let server: TestServer;
    let parent: Credentials;
    let child: Credentials;
    let other: Credentials;
    const templates = (account: Credentials, rest = "") =>
      `${API}/Accounts/${account.sid}/Email/Templates${rest}`;
    const create = (account: Credentials, form: Record<string, string>, suffix = ".json") =>
      request(server, "POST", templates(account, suffix), { auth: account, form });
    let counter = 0;
    const uniqueName = (prefix: string) => `${prefix}-${++counter}`;

    before(async () => {
      server = await startMailroom({ store: variant.kind });
      parent = await server.createAccount("parent@example.org", server.admin.sid);
      child = await server.createAccount("child@example.org", parent.sid);
      other = await server.createAccount("other@example.org", server.admin.sid);
    });
    after(async () => {
      await server?.close();
    });

    test("create, get, list, update and delete; form and JSON bodies", async () => {
      const created = await create(parent, {
        Name: "welcome",
        Subject: "Welcome, {{name}}",
        Html: "<p>Hello {{name}}</p>",
        Text: "Hello {{name}}",
      });
      assert.equal(created.status, 200, created.text);
      const t = created.json;
      assert.deepEqual(Object.keys(t).sort(), TEMPLATE_FIELDS);
      assert.match(t.sid, /^ET[0-9a-f]{32}$/);
      assert.equal(t.account_sid, parent.sid);
      assert.equal(t.name, "welcome");
      assert.equal(t.subject, "Welcome, {{name}}");
      assert.equal(t.html, "<p>Hello {{name}}</p>");
      assert.equal(t.text, "Hello {{name}}");
      assert.equal(t.uri, `${templates(parent)}/${t.sid}.json`);

      const got = await request(server, "GET", templates(parent, `/${t.sid}.json`), { auth: parent });
      assert.equal(got.status, 200);
      assert.deepEqual(got.json, t);

      const listed = await request(server, "GET", templates(parent, ".json"), { auth: parent });
      assert.equal(listed.status, 200);
      assert.ok(listed.json.templates.some((x: { sid: string }) => x.sid === t.sid));
      assert.equal(typeof listed.json.total, "number");

      const updated = await request(server, "POST", templates(parent, `/${t.sid}.json`), {
        auth: parent,
        json: { Subject: "Hi {{name}}", Text: "" },
      });
      assert.equal(updated.status, 200, updated.text);
      assert.equal(updated.json.subject, "Hi {{name}}");
      assert.equal(updated.json.html, "<p>Hello {{name}}</p>");
      assert.equal("text" in updated.json, false, "an empty Text removes the part");
      assert.equal(updated.json.name, "welcome");

      // Neither part left: refused.
      const empty = await request(server, "POST", templates(parent, `/${t.sid}.json`), {
        auth: parent,
        form: { Html: "" },
      });
      assert.equal(empty.status, 400);
      assert.equal(empty.json.code, 15101);

      const deleted = await request(server, "DELETE", templates(parent, `/${t.sid}`), { auth: parent });
      assert.equal(deleted.status, 204);
      const gone = await request(server, "GET", templates(parent, `/${t.sid}.json`), { auth: parent });
      assert.equal(gone.status, 404);
      assert.equal(gone.json.code, 15100);
    });

    test("XML is the default answer", async () => {
      const created = await create(parent, { Name: uniqueName("xml"), Subject: "S", Text: "T & {{x}}" }, "");
      assert.equal(created.status, 200, created.text);
      assert.match(created.headers.get("content-type") ?? "", /xml/);
      assert.match(created.text, /^<RestcommResponse><EmailTemplate><Sid>ET[0-9a-f]{32}<\/Sid>/);
      assert.match(created.text, /<Text>T &amp; \{\{x\}\}<\/Text>/);
      const listed = await request(server, "GET", templates(parent), { auth: parent });
      assert.match(listed.text, /<EmailTemplates [^>]*total="\d+"[^>]*><EmailTemplate>/);
    });

    test("a name is unique in its account: 409; another account may use it", async () => {
      const name = uniqueName("dup");
      const first = await create(parent, { Name: name, Subject: "S", Text: "T" });
      assert.equal(first.status, 200, first.text);
      const second = await create(parent, { Name: name, Subject: "S2", Text: "T2" });
      assert.equal(second.status, 409);
      assert.equal(second.json.code, 15103);
      assert.match(second.json.message, new RegExp(`"${name}"`));
      const elsewhere = await create(other, { Name: name, Subject: "S", Text: "T" });
      assert.equal(elsewhere.status, 200, elsewhere.text);
      // Renaming onto a taken name is refused too.
      const third = await create(parent, { Name: uniqueName("dup"), Subject: "S", Text: "T" });
      const rename = await request(server, "POST", templates(parent, `/${third.json.sid}.json`), {
        auth: parent,
        form: { Name: name },
      });
      assert.equal(rename.status, 409);
      assert.equal(rename.json.code, 15103);
    });

    test("missing and invalid fields, unknown parameters", async () => {
      const noName = await create(parent, { Subject: "S", Text: "T" });
      assert.equal(noName.status, 400);
      assert.equal(noName.json.code, 15101);
      assert.equal(noName.json.message, "Name can not be null.");
      const noBody = await create(parent, { Name: uniqueName("nobody"), Subject: "S" });
      assert.equal(noBody.status, 400);
      assert.equal(noBody.json.code, 15101);
      const newline = await create(parent, { Name: uniqueName("nl"), Subject: "a\r\nBcc: x@y.z", Text: "T" });
      assert.equal(newline.status, 400);
      assert.equal(newline.json.code, 15102);
      const longName = await create(parent, { Name: "n".repeat(101), Subject: "S", Text: "T" });
      assert.equal(longName.status, 400);
      assert.equal(longName.json.code, 15102);
      const big = await create(parent, {
        Name: uniqueName("big"),
        Subject: "S",
        Html: "x".repeat(512 * 1024 + 1),
      });
      assert.equal(big.status, 400);
      assert.equal(big.json.code, 15102);
      const unknown = await create(parent, { Name: uniqueName("u"), Subject: "S", Text: "T", Body: "x" });
      assert.equal(unknown.status, 400);
      assert.equal(unknown.json.code, 20009);
      assert.match(unknown.json.message, /Body/);
    });

    test("a syntax error is refused when saved, with the field, line and column", async () => {
      const broken = await create(parent, {
        Name: uniqueName("broken"),
        Subject: "S",
        Html: "<p>line one</p>\n<p>Hello {{name}</p>",
      });
      assert.equal(broken.status, 400);
      assert.equal(broken.json.code, 15104);
      assert.match(broken.json.message, /^Html has a template syntax error at line 2, column \d+/);
      const unclosed = await create(parent, {
        Name: uniqueName("broken"),
        Subject: "S",
        Text: "a\nb\n{{#each items}}{{this}}",
      });
      assert.equal(unclosed.status, 400);
      assert.equal(unclosed.json.code, 15104);
      assert.match(unclosed.json.message, /^Text has a template syntax error at line 3/);
      const mismatched = await create(parent, {
        Name: uniqueName("broken"),
        Subject: "{{#if a}}x{{/unless}}",
        Text: "T",
      });
      assert.equal(mismatched.status, 400);
      assert.equal(mismatched.json.code, 15104);
      assert.match(
        mismatched.json.message,
        /^Subject has a template syntax error at line 1, column \d+: if doesn't match unless/,
      );
      // Partials and helpers Mailroom does not offer are refused when saved, not at send time.
      for (const [html, what] of [
        ["x\n  {{> footer}}", /partial/],
        ["{{lookup a b}}", /helper call/],
        ["{{#repeat n}}x{{/repeat}}", /block "repeat"/],
      ] as const) {
        const refused = await create(parent, { Name: uniqueName("refused"), Subject: "S", Html: html });
        assert.equal(refused.status, 400, html);
        assert.equal(refused.json.code, 15104);
        assert.match(refused.json.message, what);
        assert.match(refused.json.message, /at line \d+, column \d+/);
      }
      const updateBroken = await create(parent, { Name: uniqueName("fine"), Subject: "S", Text: "T" });
      const update = await request(server, "POST", templates(parent, `/${updateBroken.json.sid}.json`), {
        auth: parent,
        form: { Text: "{{" },
      });
      assert.equal(update.status, 400);
      assert.equal(update.json.code, 15104);
    });

    test("preview renders with TemplateData: HTML escaped, text raw; strict and non-strict", async () => {
      const created = await create(parent, {
        Name: uniqueName("preview"),
        Subject: "Order {{order.id}} for {{name}}",
        Html: "<p>{{name}} {{{trusted}}}</p>{{#each items}}<li>{{this}}</li>{{/each}}",
        Text: "Hi {{name}} {{missing}}!",
      });
      assert.equal(created.status, 200, created.text);
      const preview = (body: { json?: unknown; form?: Record<string, string> }) =>
        request(server, "POST", templates(parent, `/${created.json.sid}/Preview.json`), {
          auth: parent,
          ...body,
        });
      const data = {
        name: "<script>alert(1)</script>",
        trusted: "<b>bold</b>",
        order: { id: 42 },
        items: ["a&b", "c"],
      };
      const shown = await preview({ json: { TemplateData: data } });
      assert.equal(shown.status, 200, shown.text);
      assert.equal(shown.json.sid, created.json.sid);
      assert.equal(shown.json.subject, "Order 42 for <script>alert(1)</script>");
      assert.equal(
        shown.json.html,
        "<p>&lt;script&gt;alert(1)&lt;/script&gt; <b>bold</b></p><li>a&amp;b</li><li>c</li>",
      );
      assert.equal(shown.json.text, "Hi <script>alert(1)</script> !");

      // Form bodies carry TemplateData as JSON text.
      const form = await preview({ form: { TemplateData: JSON.stringify(data), TemplateStrict: "false" } });
      assert.equal(form.status, 200, form.text);
      assert.equal(form.json.text, shown.json.text);

      const strict = await preview({ json: { TemplateData: data, TemplateStrict: true } });
      assert.equal(strict.status, 400);
      assert.equal(strict.json.code, 15112);
      assert.match(strict.json.message, /"missing".*Text.*line 1, column 13/);

      const notObject = await preview({ form: { TemplateData: "[1,2]" } });
      assert.equal(notObject.status, 400);
      assert.equal(notObject.json.code, 20010);
      assert.match(notObject.json.message, /TemplateData must hold a JSON object/);
      const jsonString = await preview({ json: { TemplateData: "{}" } });
      assert.equal(jsonString.status, 400);
      assert.match(jsonString.json.message, /TemplateData/);
      const badStrict = await preview({ form: { TemplateStrict: "yes" } });
      assert.equal(badStrict.status, 400);
      assert.equal(badStrict.json.code, 15111);
      // Data nested thousands deep (it would overflow a recursive walk) or too large: a 400, never a 500.
      const depth = 5000;
      const deep = await request(server, "POST", templates(parent, `/${created.json.sid}/Preview.json`), {
        auth: parent,
        headers: { "content-type": "application/json" },
        body: `{"TemplateData":{"a":${"[".repeat(depth)}${"]".repeat(depth)}}}`,
      });
      assert.equal(deep.status, 400, deep.text);
      assert.equal(deep.json.code, 15111);
      assert.match(deep.json.message, /32 levels/);
      const large = await preview({ json: { TemplateData: { big: "x".repeat(300 * 1024) } } });
      assert.equal(large.status, 400);
      assert.equal(large.json.code, 15111);
      const unknown = await preview({ form: { Data: "{}" } });
      assert.equal(unknown.status, 400);
      assert.equal(unknown.json.code, 20009);
    });

    test("an update is used at once (the compiled cache follows date_updated)", async () => {
      const created = await create(parent, { Name: uniqueName("fresh"), Subject: "v1 {{x}}", Text: "one" });
      assert.equal(created.status, 200, created.text);
      const preview = () =>
        request(server, "POST", templates(parent, `/${created.json.sid}/Preview.json`), {
          auth: parent,
          json: { TemplateData: { x: "!" } },
        });
      assert.equal((await preview()).json.subject, "v1 !");
      for (const version of ["v2", "v3", "v4"]) {
        // Updates within one millisecond still make a new version: date_updated only grows.
        const updated = await request(server, "POST", templates(parent, `/${created.json.sid}.json`), {
          auth: parent,
          form: { Subject: `${version} {{x}}` },
        });
        assert.equal(updated.status, 200, updated.text);
        assert.equal((await preview()).json.subject, `${version} !`);
      }
    });

    test("a render is bounded: nested #each over long arrays is a 400, not a stuck server", async () => {
      const created = await create(parent, {
        Name: uniqueName("loops"),
        Subject: "S",
        Text: "{{#each a}}{{#each @root.a}}{{#each @root.a}}x{{/each}}{{/each}}{{/each}}",
      });
      assert.equal(created.status, 200, created.text);
      const refused = await request(server, "POST", templates(parent, `/${created.json.sid}/Preview.json`), {
        auth: parent,
        json: { TemplateData: { a: Array.from({ length: 1000 }, (_, i) => i) } },
      });
      assert.equal(refused.status, 400);
      assert.equal(refused.json.code, 15113);
      assert.match(refused.json.message, /10000 #each iterations/);
      const small = await request(server, "POST", templates(parent, `/${created.json.sid}/Preview.json`), {
        auth: parent,
        json: { TemplateData: { a: [1, 2] } },
      });
      assert.equal(small.status, 200, small.text);
      assert.equal(small.json.text, "xxxxxxxx");
    });

    test("a sub-account uses its parent's templates but cannot change them; other tenants see nothing", async () => {
      const shared = await create(parent, { Name: uniqueName("house"), Subject: "S {{x}}", Text: "T" });
      assert.equal(shared.status, 200, shared.text);
      const sid = shared.json.sid;

      const got = await request(server, "GET", templates(child, `/${sid}.json`), { auth: child });
      assert.equal(got.status, 200, got.text);
      assert.equal(got.json.account_sid, parent.sid);
      const listed = await request(server, "GET", templates(child, ".json?PageSize=1000"), { auth: child });
      assert.ok(listed.json.templates.some((x: { sid: string }) => x.sid === sid));
      const previewed = await request(server, "POST", templates(child, `/${sid}/Preview.json`), {
        auth: child,
        json: { TemplateData: { x: 1 } },
      });
      assert.equal(previewed.status, 200, previewed.text);
      assert.equal(previewed.json.subject, "S 1");

      const update = await request(server, "POST", templates(child, `/${sid}.json`), {
        auth: child,
        form: { Subject: "mine now" },
      });
      assert.equal(update.status, 403);
      assert.equal(update.json.code, 15105);
      const del = await request(server, "DELETE", templates(child, `/${sid}.json`), { auth: child });
      assert.equal(del.status, 403);
      assert.equal(del.json.code, 15105);
      const still = await request(server, "GET", templates(parent, `/${sid}.json`), { auth: parent });
      assert.equal(still.json.subject, "S {{x}}");

      // The parent does not see its sub-account's templates as its own, nor do siblings see each other's.
      const own = await create(child, { Name: uniqueName("childs"), Subject: "S", Text: "T" });
      assert.equal(own.status, 200, own.text);
      const fromParent = await request(server, "GET", templates(parent, `/${own.json.sid}.json`), {
        auth: parent,
      });
      assert.equal(fromParent.status, 404);
      const stranger = await request(server, "GET", templates(other, `/${sid}.json`), { auth: other });
      assert.equal(stranger.status, 404);
      assert.equal(stranger.json.code, 15100);
      const strangerList = await request(server, "GET", templates(other, ".json?PageSize=1000"), {
        auth: other,
      });
      assert.equal(
        strangerList.json.templates.some((x: { account_sid: string }) => x.account_sid === parent.sid),
        false,
      );
      const strangerDelete = await request(server, "DELETE", templates(other, `/${sid}`), { auth: other });
      assert.equal(strangerDelete.status, 404);
    });
  });
}
