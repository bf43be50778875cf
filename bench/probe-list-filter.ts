/**
 * Issue 12 item 7's probe: does one tenant's list filter stall another tenant's sends (SQLite)?
 *
 *   node dist/bench/probe-list-filter.js
 *
 * Account A gets PROBE_MESSAGES (100,000) messages, written straight into the file before the server
 * starts; a `mailroom serve` child process then serves both accounts. Account B posts PROBE_POSTS
 * messages one after another, first alone, then while PROBE_READERS (4) clients loop
 * `GET …/Email/Messages.json?To=<random>&PageSize=1` on account A. Prints B's POST p50/p99 in both
 * phases and what the readers got. Not part of the test suite: it measures, it asserts nothing.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import BetterSqlite3 from "better-sqlite3";
import { newSid } from "../src/domain/ids.js";
import { CLI, startServeProcess } from "../test/helpers/cli.js";
import { emailRow } from "../test/helpers/store-rows.js";

const MESSAGES = Number(process.env.PROBE_MESSAGES ?? 100_000);
const POSTS = Number(process.env.PROBE_POSTS ?? 200);
const READERS = Number(process.env.PROBE_READERS ?? 4);
const API = "/restcomm/2012-04-24";
const run = promisify(execFile);

interface Account {
  sid: string;
  token: string;
}

async function createAccount(env: Record<string, string>, email: string): Promise<Account> {
  const { stdout } = await run(process.execPath, [CLI, "accounts", "create", "--email", email], {
    env: { ...process.env, ...env },
  });
  const account = JSON.parse(stdout) as { sid: string; auth_token: string };
  return { sid: account.sid, token: account.auth_token };
}

function auth(account: Account): string {
  return `Basic ${Buffer.from(`${account.sid}:${account.token}`).toString("base64")}`;
}

/** Writes `count` final (sent) messages of `accountSid` straight into the file, as history. */
function fillHistory(file: string, accountSid: string, count: number): void {
  const db = new BetterSqlite3(file);
  const columns = Object.keys(emailRow(accountSid));
  const insert = db.prepare(
    `insert into email_messages (${columns.join(", ")}) values (${columns.map(() => "?").join(", ")})`,
  );
  const start = Date.now() - count * 1000;
  db.transaction(() => {
    for (let i = 0; i < count; i++) {
      const at = start + i * 1000;
      const row = emailRow(accountSid, {
        sid: newSid("EM", at),
        to_addresses: `rcpt${i}@${randomBytes(3).toString("hex")}.example.com`,
        status: "sent",
        date_created: at,
        date_updated: at,
        date_sent: at,
        date_delivered: at,
      });
      insert.run(columns.map((column) => (row as Record<string, unknown>)[column] ?? null));
    }
  })();
  db.close();
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? Number.NaN;
}

async function postSeries(
  url: string,
  account: Account,
): Promise<{ p50: number; p99: number; errors: number }> {
  const times: number[] = [];
  let errors = 0;
  for (let i = 0; i < POSTS; i++) {
    const started = performance.now();
    const response = await fetch(`${url}${API}/Accounts/${account.sid}/Email/Messages.json`, {
      method: "POST",
      headers: { authorization: auth(account), "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        From: "b@tenant-b.example",
        To: "someone@example.org",
        Subject: `probe ${i}`,
        Body: "hello",
      }).toString(),
    });
    await response.arrayBuffer();
    times.push(performance.now() - started);
    if (response.status !== 200) errors++;
  }
  times.sort((a, b) => a - b);
  return { p50: percentile(times, 50), p99: percentile(times, 99), errors };
}

const dataDir = await mkdtemp(path.join(process.env.BENCH_TMPDIR ?? tmpdir(), "mailroom-probe-"));
const env = { MAILROOM_DATA_DIR: dataDir };
try {
  const a = await createAccount(env, "a@tenant-a.example");
  const b = await createAccount(env, "b@tenant-b.example");
  const filling = Date.now();
  fillHistory(path.join(dataDir, "mailroom.db"), a.sid, MESSAGES);
  console.log(`${MESSAGES} messages written for account A in ${Date.now() - filling} ms`);

  const server = await startServeProcess({ ...env, MAILROOM_LOG_LEVEL: "info" }, 60_000);
  try {
    const alone = await postSeries(server.url, b);
    console.log(
      `B's POSTs alone:          p50 ${alone.p50.toFixed(1)} ms, p99 ${alone.p99.toFixed(1)} ms (${alone.errors} errors)`,
    );
    let reading = true;
    const readTimes: number[] = [];
    const readStatuses = new Map<number, number>();
    const reader = async () => {
      while (reading) {
        const to = randomBytes(4).toString("hex");
        const started = performance.now();
        const response = await fetch(
          `${server.url}${API}/Accounts/${a.sid}/Email/Messages.json?To=${to}&PageSize=1`,
          { headers: { authorization: auth(a) } },
        );
        await response.arrayBuffer();
        readTimes.push(performance.now() - started);
        readStatuses.set(response.status, (readStatuses.get(response.status) ?? 0) + 1);
      }
    };
    const readers = Array.from({ length: READERS }, reader);
    const loaded = await postSeries(server.url, b);
    reading = false;
    await Promise.all(readers);
    readTimes.sort((x, y) => x - y);
    console.log(
      `B's POSTs beside ${READERS} readers: p50 ${loaded.p50.toFixed(1)} ms, p99 ${loaded.p99.toFixed(1)} ms (${loaded.errors} errors)`,
    );
    console.log(
      `A's filtered lists: ${readTimes.length} answered, p50 ${percentile(readTimes, 50).toFixed(1)} ms, p99 ${percentile(readTimes, 99).toFixed(1)} ms, statuses ${JSON.stringify(Object.fromEntries(readStatuses))}`,
    );
    server.child.kill("SIGTERM");
    await server.exited;
  } finally {
    server.child.kill("SIGKILL");
  }
} finally {
  await rm(dataDir, { recursive: true, force: true });
}
