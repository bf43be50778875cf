import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, type TestContext, test } from "node:test";
import { SMTPServer } from "smtp-server";
import { runCli, type ServeProcess, startServeProcess } from "./helpers/cli.js";
import { API, basicAuth } from "./helpers/mailroom.js";
import { adminQuery, createTestSchema } from "./helpers/postgres.js";
import { storeVariants } from "./helpers/stores.js";
import { waitFor } from "./helpers/wait.js";

const PROCESSES = 3;
// Two thousand per run keeps the file near a minute on a busy two-core machine; raise it to soak.
const MESSAGES = Number(process.env.MAILROOM_TEST_MULTI_MESSAGES ?? 2000);
const POST_CONCURRENCY = 24;
const DELIVERY_CONCURRENCY = 10;

/**
 * A real SMTP server that only counts: how many times each Message-ID was accepted. Counting happens
 * when it answers 250, so a sender killed after that point has "delivered" the message. (Parsing
 * every message with mailparser would cost more CPU than the three servers under test.)
 */
class CountingSink {
  readonly counts = new Map<string, number>();
  private readonly server: SMTPServer;
  port = 0;

  constructor(private readonly delayMs: number) {
    this.server = new SMTPServer({
      logger: false,
      authOptional: true,
      disabledCommands: ["AUTH", "STARTTLS"],
      onData: (stream, _session, callback) => {
        let head = "";
        stream.on("data", (chunk: Buffer) => {
          if (head.length < 16_384) head += chunk.toString("latin1");
        });
        stream.on("end", () => {
          const id =
            /^message-id:\s*(<[^>\s]+>)/im.exec(head.split(/\r?\n\r?\n/, 1)[0] ?? "")?.[1] ?? "(none)";
          setTimeout(() => {
            this.counts.set(id, (this.counts.get(id) ?? 0) + 1);
            callback(null, "counted");
          }, this.delayMs);
        });
      },
    });
    this.server.on("error", () => {});
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.port = (this.server.server.address() as AddressInfo).port;
    return this;
  }

  get url(): string {
    return `smtp://127.0.0.1:${this.port}`;
  }

  /** Copies received beyond the first, over all messages. */
  duplicates(): number {
    let extra = 0;
    for (const n of this.counts.values()) extra += n - 1;
    return extra;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

interface Cluster {
  processes: ServeProcess[];
  sink: CountingSink;
  schema: string;
  auth: { sid: string; token: string };
  close(): Promise<void>;
}

/** One fresh schema, one sink, an account made with the CLI, then PROCESSES `mailroom serve` on it. */
async function startCluster(sinkDelayMs: number): Promise<Cluster> {
  const pg = await createTestSchema();
  const dataDir = await mkdtemp(join(tmpdir(), "mailroom-multi-"));
  const sink = await new CountingSink(sinkDelayMs).start();
  const processes: ServeProcess[] = [];
  const close = async () => {
    await Promise.all(processes.map((p) => stopProcess(p)));
    await sink.close();
    await pg.drop();
    await rm(dataDir, { recursive: true, force: true });
  };
  try {
    const env = {
      MAILROOM_DATABASE_URL: pg.url,
      MAILROOM_DATABASE_POOL_SIZE: "5",
      MAILROOM_DATA_DIR: dataDir,
      MAILROOM_SMTP_URL: sink.url,
      MAILROOM_DELIVERY_CONCURRENCY: String(DELIVERY_CONCURRENCY),
      // Short leases so the killed process's messages are taken over within seconds.
      MAILROOM_LEASE_MS: "2000",
      MAILROOM_POLL_INTERVAL_MS: "500",
      MAILROOM_RETRY_BASE_MS: "100",
      MAILROOM_RETRY_MAX_MS: "500",
      MAILROOM_SHUTDOWN_TIMEOUT_MS: "2000",
    };
    // The account first: the store is then not empty, so no process bootstraps an administrator.
    const created = await runCli(["accounts", "create", "--email", "multi@example.org"], env);
    assert.equal(created.code, 0, created.stderr);
    const account = JSON.parse(created.stdout) as { sid: string; auth_token: string };
    // Each started process is kept as soon as it is up, so a failure to start another still stops it.
    await Promise.all(
      Array.from({ length: PROCESSES }, async () => {
        processes.push(await startServeProcess(env));
      }),
    );
    return {
      processes,
      sink,
      schema: pg.schema,
      auth: { sid: account.sid, token: account.auth_token },
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

async function stopProcess(p: ServeProcess): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill("SIGTERM");
  const stopped = await Promise.race([p.exited.then(() => true), sleep(10_000).then(() => false)]);
  if (!stopped) p.child.kill("SIGKILL");
  await p.exited;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

interface Posted {
  /** Message-IDs of the messages acknowledged with 200. */
  acknowledged: string[];
  /** Requests that got no 200 (only expected towards the killed process). */
  failed: number;
}

/**
 * Posts MESSAGES messages round-robin over the processes `alive()` returns, POST_CONCURRENCY at a time.
 * `afterEach` runs after every response (the kill test uses it to pick its moment).
 */
async function postAll(
  cluster: Cluster,
  alive: () => ServeProcess[],
  afterEach: (acknowledged: number) => void = () => {},
): Promise<Posted> {
  const posted: Posted = { acknowledged: [], failed: 0 };
  const authorization = basicAuth(cluster.auth);
  let next = 0;
  const sender = async () => {
    while (next < MESSAGES) {
      const i = next++;
      const targets = alive();
      const target = targets[i % targets.length] as ServeProcess;
      try {
        const response = await fetch(`${target.url}${API}/Accounts/${cluster.auth.sid}/Email/Messages.json`, {
          method: "POST",
          headers: { authorization, "content-type": "application/x-www-form-urlencoded" },
          body: new URLSearchParams({
            From: "sender@example.org",
            To: `rcpt${i % 50}@example.com`,
            Subject: `multi-process ${i}`,
            Body: `message ${i}`,
          }).toString(),
        });
        const json = (await response.json()) as { message_id?: string };
        if (response.status === 200 && json.message_id) posted.acknowledged.push(json.message_id);
        else posted.failed += 1;
      } catch {
        posted.failed += 1;
      }
      afterEach(posted.acknowledged.length);
    }
  };
  await Promise.all(Array.from({ length: POST_CONCURRENCY }, sender));
  return posted;
}

/** Messages per status, read straight from the shared database. */
async function statusCounts(schema: string): Promise<Record<string, number>> {
  const rows = await adminQuery<{ status: string; n: string }>(
    `select status, count(*) as n from ${schema}.email_messages group by status`,
  );
  return Object.fromEntries(rows.map((row) => [row.status, Number(row.n)]));
}

/** Waits until every acknowledged message reached the sink and every stored message is `sent`. */
async function waitUntilAllSent(cluster: Cluster, posted: Posted, timeoutMs: number): Promise<void> {
  await waitFor(
    "every acknowledged message at the sink",
    () => posted.acknowledged.every((id) => cluster.sink.counts.has(id)),
    timeoutMs,
  );
  await waitFor(
    "every stored message to be sent",
    async () => {
      const counts = await statusCounts(cluster.schema);
      const queue = await adminQuery(`select 1 from ${cluster.schema}.delivery_queue limit 1`);
      return Object.keys(counts).every((status) => status === "sent") && queue.length === 0;
    },
    timeoutMs,
  );
}

function report(t: TestContext, cluster: Cluster, posted: Posted, started: number): void {
  t.diagnostic(
    `acknowledged ${posted.acknowledged.length}, failed posts ${posted.failed}, distinct at sink ${cluster.sink.counts.size}, ` +
      `duplicates ${cluster.sink.duplicates()}, ${Date.now() - started} ms`,
  );
}

const [, postgres] = await storeVariants();
describe(`${PROCESSES} mailroom processes on one PostgreSQL`, {
  skip: postgres?.skip ?? "no PostgreSQL variant",
  timeout: 240_000,
}, () => {
  test(`${MESSAGES} messages posted round-robin are each delivered exactly once`, async (t) => {
    const started = Date.now();
    const cluster = await startCluster(0);
    try {
      const posted = await postAll(cluster, () => cluster.processes);
      t.diagnostic(
        `all posted after ${Date.now() - started} ms, ${cluster.sink.counts.size} already at the sink`,
      );
      assert.equal(posted.failed, 0);
      assert.equal(new Set(posted.acknowledged).size, MESSAGES);
      await waitUntilAllSent(cluster, posted, 60_000);
      report(t, cluster, posted, started);

      assert.equal(cluster.sink.counts.size, MESSAGES, "nothing but the posted messages arrived");
      assert.equal(cluster.sink.duplicates(), 0, "no message was delivered twice");
      assert.deepEqual(await statusCounts(cluster.schema), { sent: MESSAGES });
    } finally {
      await cluster.close();
    }
  });

  test("one process SIGKILLed mid-run: nothing acknowledged is lost, duplicates stay within its in-flight batch", async (t) => {
    const started = Date.now();
    // A slow relay keeps every process's delivery slots full, so the kill lands mid-batch.
    const cluster = await startCluster(5);
    try {
      const [victim, ...survivors] = cluster.processes as [ServeProcess, ...ServeProcess[]];
      let killed = false;
      const posted = await postAll(
        cluster,
        () => (killed ? survivors : cluster.processes),
        (acknowledged) => {
          if (!killed && acknowledged >= MESSAGES * 0.4) {
            killed = true;
            victim.child.kill("SIGKILL");
          }
        },
      );
      t.diagnostic(
        `all posted after ${Date.now() - started} ms, ${cluster.sink.counts.size} already at the sink`,
      );
      assert.ok(killed);
      assert.equal(await victim.exited, null, "the victim died of SIGKILL");
      // Only requests in flight to the victim when it died can have failed.
      assert.ok(posted.failed <= POST_CONCURRENCY, `${posted.failed} failed posts`);
      await waitUntilAllSent(cluster, posted, 90_000);
      report(t, cluster, posted, started);

      // Delivered at least once: every acknowledged message, and every message committed at all
      // (a post cut off by the kill may have been stored without its 200).
      const total = Object.values(await statusCounts(cluster.schema)).reduce((a, b) => a + b, 0);
      assert.ok(total >= posted.acknowledged.length);
      assert.equal(cluster.sink.counts.size, total);
      // A duplicate is a message the victim handed to the relay but died before recording.
      assert.ok(
        cluster.sink.duplicates() <= DELIVERY_CONCURRENCY,
        `${cluster.sink.duplicates()} duplicates > the victim's ${DELIVERY_CONCURRENCY} delivery slots`,
      );
    } finally {
      await cluster.close();
    }
  });
});
