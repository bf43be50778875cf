import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { getMessage, waitForFinal } from "./helpers/delivery.js";
import { API, type Credentials, request, startMailroom, type TestServer } from "./helpers/mailroom.js";
import { SmtpSink } from "./helpers/smtp-sink.js";
import { storeVariants } from "./helpers/stores.js";
import { waitFor } from "./helpers/wait.js";

for (const variant of await storeVariants()) {
  describe(`sending with templates (${variant.kind})`, { skip: variant.skip }, () => {
    let sink: SmtpSink;
    let server: TestServer;
    let parent: Credentials;
    let child: Credentials;
    let other: Credentials;
    let welcome: { sid: string; name: string };
    const templates = (account: Credentials, rest = "") =>
      `${API}/Accounts/${account.sid}/Email/Templates${rest}`;
    const messages = (account: Credentials) => `${API}/Accounts/${account.sid}/Email/Messages.json`;
    const sendForm = (account: Credentials, form: Record<string, string>) =>
      request(server, "POST", messages(account), {
        auth: account,
        form: { From: "shop@example.org", To: "ada@example.net", ...form },
      });
    const sendJson = (account: Credentials, json: Record<string, unknown>) =>
      request(server, "POST", messages(account), {
        auth: account,
        json: { From: "shop@example.org", To: "ada@example.net", ...json },
      });
    const delivered = async (account: Credentials, sid: string) => {
      const message = await waitForFinal(server, account, sid);
      assert.equal(message.status, "sent", message.error_message);
      const mail = await waitFor(
        "the relay to receive the message",
        () => sink.received.find((m) => m.messageId === message.message_id),
        30_000,
      );
      return { message, mail };
    };

    before(async () => {
      sink = await SmtpSink.start();
      server = await startMailroom({ store: variant.kind, env: { MAILROOM_SMTP_URL: sink.url } });
      parent = await server.createAccount("shop@example.org", server.admin.sid);
      child = await server.createAccount("branch@example.org", parent.sid);
      other = await server.createAccount("stranger@example.org", server.admin.sid);
      const created = await request(server, "POST", templates(parent, ".json"), {
        auth: parent,
        json: {
          Name: "welcome",
          Subject: "Welcome, {{name}}",
          Html: "<h1>Hello {{name}}</h1>{{#if vip}}<p>VIP</p>{{/if}}",
          Text: "Hello {{name}}{{#if vip}} (VIP){{/if}}",
        },
      });
      assert.equal(created.status, 200, created.text);
      welcome = created.json;
    });
    after(async () => {
      await server?.close();
      await sink?.stop();
    });

    test("the delivered message, GET and /Mime show the rendered content; template_sid says which", async () => {
      const sent = await sendForm(parent, {
        TemplateSid: welcome.sid,
        TemplateData: JSON.stringify({ name: "Ada <script>x</script>", vip: true }),
      });
      assert.equal(sent.status, 200, sent.text);
      assert.equal(sent.json.subject, "Welcome, Ada <script>x</script>");
      assert.equal(sent.json.html, "<h1>Hello Ada &lt;script&gt;x&lt;/script&gt;</h1><p>VIP</p>");
      assert.equal(sent.json.text, "Hello Ada <script>x</script> (VIP)");
      assert.equal(sent.json.template_sid, welcome.sid);
      const { message, mail } = await delivered(parent, sent.json.sid);
      assert.equal(message.template_sid, welcome.sid);
      assert.equal(mail.parsed.subject, "Welcome, Ada <script>x</script>");
      assert.equal(mail.parsed.html, "<h1>Hello Ada &lt;script&gt;x&lt;/script&gt;</h1><p>VIP</p>");
      assert.equal(mail.parsed.text?.trim(), "Hello Ada <script>x</script> (VIP)");
      const again = await getMessage(server, parent, sent.json.sid);
      assert.equal(again.html, sent.json.html);
      const mime = await request(
        server,
        "GET",
        `${API}/Accounts/${parent.sid}/Email/Messages/${sent.json.sid}/Mime`,
        {
          auth: parent,
        },
      );
      assert.equal(mime.status, 200);
      assert.ok(
        mime.text.includes("Hello Ada &lt;script&gt;x&lt;/script&gt;"),
        "the MIME holds the rendered HTML",
      );
      assert.ok(!mime.text.includes("{{name}}"), "no template source went out");
    });

    test("TemplateName in a JSON body; explicit Subject and Text override the template's", async () => {
      const sent = await sendJson(parent, {
        TemplateName: "welcome",
        TemplateData: { name: "Grace" },
        Subject: "Your account is ready",
        Text: "Plain words of my own",
      });
      assert.equal(sent.status, 200, sent.text);
      assert.equal(sent.json.subject, "Your account is ready");
      assert.equal(sent.json.text, "Plain words of my own");
      assert.equal(sent.json.html, "<h1>Hello Grace</h1>");
      const { mail } = await delivered(parent, sent.json.sid);
      assert.equal(mail.parsed.subject, "Your account is ready");
      assert.equal(mail.parsed.text?.trim(), "Plain words of my own");
    });

    test("multipart bodies carry TemplateData as JSON text, beside an attachment", async () => {
      const form = new FormData();
      form.append("From", "shop@example.org");
      form.append("To", "ada@example.net");
      form.append("TemplateName", "welcome");
      form.append("TemplateData", JSON.stringify({ name: "Multi" }));
      form.append(
        "Attachment",
        new Blob([Buffer.from("%PDF-1.4 receipt")], { type: "application/pdf" }),
        "r.pdf",
      );
      const sent = await request(server, "POST", messages(parent), { auth: parent, multipart: form });
      assert.equal(sent.status, 200, sent.text);
      assert.equal(sent.json.subject, "Welcome, Multi");
      assert.equal(sent.json.attachments[0].filename, "r.pdf");
      const { mail } = await delivered(parent, sent.json.sid);
      assert.equal(mail.parsed.text?.trim(), "Hello Multi");
      assert.equal(mail.parsed.attachments[0]?.filename, "r.pdf");
    });

    test("a missing variable renders empty, or is a 400 with TemplateStrict=true", async () => {
      const lenient = await sendForm(parent, { TemplateName: "welcome", TemplateData: "{}" });
      assert.equal(lenient.status, 200, lenient.text);
      assert.equal(lenient.json.subject, "Welcome, ");
      assert.equal(lenient.json.text, "Hello ");
      const strict = await sendForm(parent, {
        TemplateName: "welcome",
        TemplateData: "{}",
        TemplateStrict: "true",
      });
      assert.equal(strict.status, 400);
      assert.equal(strict.json.code, 15112);
      assert.match(strict.json.message, /"name".*Subject.*line 1, column 10/);
    });

    test("a rendered subject with a line break is refused: data cannot add a header", async () => {
      const sent = await sendJson(parent, {
        TemplateSid: welcome.sid,
        TemplateData: { name: "Ada\r\nBcc: victim@example.com" },
      });
      assert.equal(sent.status, 400);
      assert.equal(sent.json.code, 13015);
      assert.match(sent.json.message, /^Subject contains a line break/);
      const list = await request(server, "GET", `${messages(parent)}?PageSize=1000`, { auth: parent });
      assert.equal(
        list.json.messages.some((m: { subject: string }) => m.subject.includes("victim")),
        false,
        "nothing was stored",
      );
    });

    test("a sub-account sends with its parent's template; another tenant cannot", async () => {
      const sent = await sendForm(child, {
        From: "branch@example.org",
        TemplateName: "welcome",
        TemplateData: JSON.stringify({ name: "Linus" }),
      });
      assert.equal(sent.status, 200, sent.text);
      assert.equal(sent.json.subject, "Welcome, Linus");
      assert.equal(sent.json.template_sid, welcome.sid);
      await delivered(child, sent.json.sid);
      // A name the sub-account also uses: its own template wins.
      const own = await request(server, "POST", templates(child, ".json"), {
        auth: child,
        form: { Name: "welcome", Subject: "Branch welcome, {{name}}", Text: "From the branch" },
      });
      assert.equal(own.status, 200, own.text);
      const nearest = await sendForm(child, {
        From: "branch@example.org",
        TemplateName: "welcome",
        TemplateData: JSON.stringify({ name: "Linus" }),
      });
      assert.equal(nearest.status, 200, nearest.text);
      assert.equal(nearest.json.subject, "Branch welcome, Linus");
      assert.equal(nearest.json.template_sid, own.json.sid);
      const removed = await request(server, "DELETE", templates(child, `/${own.json.sid}`), { auth: child });
      assert.equal(removed.status, 204);
      const ways: Record<string, string>[] = [{ TemplateSid: welcome.sid }, { TemplateName: "welcome" }];
      for (const by of ways) {
        const refused = await sendForm(other, by);
        assert.equal(refused.status, 404);
        assert.equal(refused.json.code, 15100);
      }
    });

    test("wrong combinations and parameters are refused; without a template nothing changed", async () => {
      const both = await sendForm(parent, { TemplateSid: welcome.sid, TemplateName: "welcome" });
      assert.equal(both.status, 400);
      assert.equal(both.json.code, 15110);
      const withBody = await sendForm(parent, { TemplateSid: welcome.sid, Body: "text" });
      assert.equal(withBody.status, 400);
      assert.equal(withBody.json.code, 15110);
      const dataAlone = await sendForm(parent, { Subject: "S", Body: "B", TemplateData: "{}" });
      assert.equal(dataAlone.status, 400);
      assert.equal(dataAlone.json.code, 15110);
      const notObject = await sendForm(parent, { TemplateSid: welcome.sid, TemplateData: '"Ada"' });
      assert.equal(notObject.status, 400);
      assert.equal(notObject.json.code, 20010);
      assert.match(notObject.json.message, /^TemplateData must hold a JSON object/);
      const notObjectJson = await sendJson(parent, { TemplateSid: welcome.sid, TemplateData: ["Ada"] });
      assert.equal(notObjectJson.status, 400);
      assert.match(notObjectJson.json.message, /TemplateData/);
      const unknown = await sendForm(parent, { TemplateSid: welcome.sid, TemplateVars: "{}" });
      assert.equal(unknown.status, 400);
      assert.equal(unknown.json.code, 20009);
      const badStrict = await sendForm(parent, { TemplateSid: welcome.sid, TemplateStrict: "maybe" });
      assert.equal(badStrict.status, 400);
      assert.equal(badStrict.json.code, 15111);
      const blankSubject = await sendForm(parent, { TemplateSid: welcome.sid, Subject: " " });
      assert.equal(blankSubject.status, 400);
      assert.equal(blankSubject.json.message, "Subject can not be null.");
      const noSuch = await sendForm(parent, { TemplateSid: `ET${"0".repeat(32)}` });
      assert.equal(noSuch.status, 404);
      assert.equal(noSuch.json.code, 15100);
      // Restcomm's required-parameter messages, in Restcomm's order, are as they were.
      const noBody = await sendForm(parent, { Subject: "S" });
      assert.equal(noBody.status, 400);
      assert.equal(noBody.json.message, "Body can not be null.");
      const noSubject = await sendForm(parent, { Body: "B" });
      assert.equal(noSubject.status, 400);
      assert.equal(noSubject.json.message, "Subject can not be null.");
    });
  });
}
