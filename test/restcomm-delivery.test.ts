import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { utcDay } from "../src/domain/usage-periods.js";
import { runCli, type ServeProcess, startServeProcess } from "./helpers/cli.js";
import { FAST_RETRIES, waitForFinal } from "./helpers/delivery.js";
import {
  API,
  type Credentials,
  request,
  sendEmail,
  startMailroom,
  type TestServer,
} from "./helpers/mailroom.js";
import { createTestSchema, postgresUnavailableReason } from "./helpers/postgres.js";
import { SmtpSink } from "./helpers/smtp-sink.js";
import { storeVariants } from "./helpers/stores.js";
import { onOneDay } from "./helpers/usage.js";
import { waitFor } from "./helpers/wait.js";

/** What Restcomm clients read after real deliveries: the Notifications the write path left and the usage it counted. */
type Server = { url: string };

// biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary JSON
type Json = any;

async function usage(
  server: Server,
  auth: Credentials,
  sub: string,
  query = "",
): Promise<Record<string, string>> {
  const response = await request(
    server,
    "GET",
    `${API}/Accounts/${auth.sid}/Usage/Records${sub}.json${query}`,
    {
      auth,
    },
  );
  assert.equal(response.status, 200, response.text);
  return Object.fromEntries(
    (response.json as Json[]).map((r) => [`${r.start_date}..${r.end_date} ${r.category}`, r.count]),
  );
}

/** The refused subject: the sink answers its DATA with a permanent 550. */
const REFUSE = "please refuse";
/** The greylisted subject: the sink defers its first try (451), then takes it. */
const GREYLIST = "greylist me";

function refusingSink(sink: SmtpSink) {
  sink.rules = {
    message: (m) => {
      if (m.parsed.subject === REFUSE) return { code: 550, message: "5.1.1 Mailbox unavailable" };
      if (m.parsed.subject === GREYLIST && !sink.answered.some((a) => a.messageId === m.messageId))
        return { code: 451, message: "4.7.1 Greylisted, come back later" };
      return undefined;
    },
  };
}

for (const variant of await storeVariants()) {
  describe(`Notifications and Usage Records after real deliveries (${variant.kind})`, {
    skip: variant.skip,
  }, () => {
    let sink: SmtpSink;
    let server: TestServer;
    let account: Credentials;
    const sent: string[] = [];
    const refused: string[] = [];
    let greylisted = "";
    let firstDay = "";

    before(async () => {
      sink = await SmtpSink.start();
      refusingSink(sink);
      server = await startMailroom({
        store: variant.kind,
        env: { MAILROOM_SMTP_URL: sink.url, MAILROOM_MAX_ATTEMPTS: "3", ...FAST_RETRIES },
      });
      account = await server.createAccount("restcomm-client@example.org", server.admin.sid);
      firstDay = utcDay(Date.now());
      const send = async (subject: string) => {
        const response = await sendEmail(server, account, { Subject: subject });
        assert.equal(response.status, 200, response.text);
        return response.json.sid as string;
      };
      for (let i = 0; i < 3; i++) sent.push(await send(`fine ${i}`));
      for (let i = 0; i < 2; i++) refused.push(await send(REFUSE));
      greylisted = await send(GREYLIST);
      for (const sid of [...sent, ...refused, greylisted]) await waitForFinal(server, account, sid);
    });
    after(async () => {
      await server?.close();
      await sink?.stop();
    });

    const notifications = (query: string) =>
      request(server, "GET", `${API}/Accounts/${account.sid}/Notifications.json${query}`, { auth: account });

    test("a 5xx failure is a notification (log 0) that Restcomm's client finds with ?ErrorCode and ?PageSize", async () => {
      const byCode = await notifications("?ErrorCode=13101");
      assert.equal(byCode.status, 200, byCode.text);
      assert.equal(byCode.json.total, 2);
      assert.deepEqual(byCode.json.notifications.map((n: Json) => n.message_sid).sort(), [...refused].sort());
      for (const n of byCode.json.notifications) {
        assert.equal(n.log, 0);
        assert.equal(n.error_code, 13101);
        assert.equal(n.more_info, "/restcomm/errors/13101.html");
        assert.match(n.message_text, /550 5\.1\.1 Mailbox unavailable/);
        assert.equal(n.request_url, undefined, "no request: a message's notification");
      }
      const onePerPage = await notifications("?PageSize=1");
      assert.equal(onePerPage.status, 200, onePerPage.text);
      assert.equal(onePerPage.json.notifications.length, 1);
      assert.equal(onePerPage.json.total, 3, "two failures and one deferral");
      assert.equal(onePerPage.json.num_pages, 3);

      const one = byCode.json.notifications[0];
      const fetched = await request(server, "GET", one.uri, { auth: account });
      assert.deepEqual(fetched.json, one);
    });

    test("a deferred delivery is a warning (log 1) naming the message and the relay's reply", async () => {
      const warnings = await notifications("?Log=1");
      assert.equal(warnings.json.total, 1);
      const [warning] = warnings.json.notifications;
      assert.equal(warning.message_sid, greylisted);
      assert.equal(warning.error_code, 13103);
      assert.match(warning.message_text, /451 4\.7\.1 Greylisted/);
      const none = await request(server, "GET", `${API}/Accounts/${server.admin.sid}/Notifications.json`, {
        auth: server.admin,
      });
      assert.equal(none.json.total, 0, "another account's list has none of them");
    });

    test("Usage Records Daily, Monthly and Today count what was accepted, sent and failed", async () => {
      await onOneDay(async (today) => {
        if (today !== firstDay) {
          // The messages went out around midnight: their counts are split over two days; add them up.
          const all = await usage(server, account, "/AllTime");
          assert.equal(
            Object.values(all)
              .map(Number)
              .reduce((a, b) => a + b),
            7 + 4 + 2,
          );
          return;
        }
        const expected = (start: string, end: string) => ({
          [`${start}..${end} email`]: "6",
          [`${start}..${end} email-sent`]: "4",
          [`${start}..${end} email-failed`]: "2",
          [`${start}..${end} email-bounced`]: "0",
        });
        // Restcomm's Python client's own call.
        assert.deepEqual(await usage(server, account, "/Daily"), expected(today, today));
        assert.deepEqual(await usage(server, account, "/Today"), expected(today, today));
        // By default a range starts on the day the account was created (today), and periods are cut to it.
        assert.deepEqual(await usage(server, account, "/Monthly"), expected(today, today));
        const monthStart = `${today.slice(0, 8)}01`;
        assert.deepEqual(
          await usage(server, account, "/Monthly", `?StartDate=${monthStart}&Category=email-failed`),
          {
            [`${monthStart}..${today} email-failed`]: "2",
          },
        );
      });
      const adminsOwn = await usage(server, server.admin, "/AllTime", "?Category=email");
      assert.deepEqual(
        Object.values(adminsOwn),
        ["0"],
        "the parent's own usage leaves its sub-account's out",
      );
    });
  });
}

const pgSkip = (await postgresUnavailableReason()) ?? false;

describe("Usage Records and Notifications add up over two processes on PostgreSQL", { skip: pgSkip }, () => {
  const MESSAGES = 40;
  let sink: SmtpSink;
  let processes: ServeProcess[] = [];
  let dropSchema: () => Promise<void> = async () => {};
  let dataDir = "";
  let auth: Credentials;

  before(async () => {
    sink = await SmtpSink.start();
    refusingSink(sink);
    const pg = await createTestSchema();
    dropSchema = pg.drop;
    dataDir = await mkdtemp(join(tmpdir(), "mailroom-restcomm-"));
    const env = {
      MAILROOM_DATABASE_URL: pg.url,
      MAILROOM_DATABASE_POOL_SIZE: "4",
      MAILROOM_DATA_DIR: dataDir,
      MAILROOM_SMTP_URL: sink.url,
      ...FAST_RETRIES,
    };
    const created = await runCli(["accounts", "create", "--email", "two-processes@example.org"], env);
    assert.equal(created.code, 0, created.stderr);
    const account = JSON.parse(created.stdout) as { sid: string; auth_token: string };
    auth = { sid: account.sid, token: account.auth_token };
    processes = await Promise.all([startServeProcess(env), startServeProcess(env)]);
  });
  after(async () => {
    for (const p of processes) {
      p.child.kill("SIGTERM");
      await p.exited;
    }
    await sink?.stop();
    await dropSchema();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  test("each process accepts and delivers half; either one reports the sum", async () => {
    const [a, b] = processes as [ServeProcess, ServeProcess];
    let refusedCount = 0;
    await Promise.all(
      Array.from({ length: MESSAGES }, async (_, i) => {
        const refuse = i % 4 === 0;
        if (refuse) refusedCount++;
        const response = await sendEmail(i % 2 === 0 ? a : b, auth, {
          Subject: refuse ? REFUSE : `fine ${i}`,
        });
        assert.equal(response.status, 200, response.text);
      }),
    );
    const total = async (server: Server, status: string) =>
      (
        await request(
          server,
          "GET",
          `${API}/Accounts/${auth.sid}/Email/Messages.json?Status=${status}&PageSize=1`,
          {
            auth,
          },
        )
      ).json.total as number;
    await waitFor(
      "every message sent or failed",
      async () => (await total(a, "sent")) + (await total(a, "failed")) === MESSAGES,
    );

    for (const server of [a, b]) {
      const all = await usage(server, auth, "/AllTime");
      const byCategory = (category: string) =>
        Object.entries(all)
          .filter(([key]) => key.endsWith(` ${category}`))
          .map(([, count]) => Number(count))
          .reduce((x, y) => x + y, 0);
      assert.equal(byCategory("email"), MESSAGES);
      assert.equal(byCategory("email-sent"), MESSAGES - refusedCount);
      assert.equal(byCategory("email-failed"), refusedCount);
      const daily = await usage(server, auth, "/Daily", "?Category=email");
      assert.equal(
        Object.values(daily)
          .map(Number)
          .reduce((x, y) => x + y, 0),
        MESSAGES,
        "the Daily records add up to the same",
      );
      const failures = await request(
        server,
        "GET",
        `${API}/Accounts/${auth.sid}/Notifications.json?ErrorCode=13101`,
        {
          auth,
        },
      );
      assert.equal(failures.json.total, refusedCount);
    }
  });
});
