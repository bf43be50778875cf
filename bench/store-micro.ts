/**
 * `npm run bench:store`: the SQLite store alone, in this process, as the delivery path uses it under
 * load: each round accepts a batch of messages (leased, as a hand-off does) while the attempts of the
 * previous round's batch are recorded, so both kinds meet in the group commits. It prints the CPU time
 * and wall time per message; CPU time is steadier than the end-to-end bench on a shared machine, which
 * makes this the quick way to judge a change to the store (docs/performance.md).
 *
 *   STORE_BENCH_MESSAGES=20000   messages
 *   STORE_BENCH_BATCH=20         messages accepted per round (and attempts recorded per round)
 *   STORE_BENCH_THREADED=1       through ThreadedStore (the store thread), as the server runs it
 *   BENCH_TMPDIR=$TMPDIR         where the database goes (keep it on a real disk: fsync matters)
 */
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { newSid } from "../src/domain/ids.js";
import { openSqliteStore } from "../src/store/sqlite.js";
import { ThreadedStore } from "../src/store/threaded-store.js";
import type { AttemptRecord, MailStore, NewEmailMessage } from "../src/store/types.js";
import { emailRow, insertAccount, plainContent, storedColumns } from "../test/helpers/store-rows.js";

const messages = Number(process.env.STORE_BENCH_MESSAGES ?? 20_000);
const batch = Number(process.env.STORE_BENCH_BATCH ?? 20);
const threaded = process.env.STORE_BENCH_THREADED === "1";
const BODY = "x".repeat(1024);

/** Read and write system calls and bytes written by this process so far (/proc/self/io). */
function io(): { calls: number; written: number } {
  const text = readFileSync("/proc/self/io", "utf8");
  const field = (name: string) => Number(new RegExp(`${name}: (\\d+)`).exec(text)?.[1] ?? 0);
  return { calls: field("syscr") + field("syscw"), written: field("wchar") };
}
const MIME = "M".repeat(1300);

function delivered(row: NewEmailMessage, owner: string): AttemptRecord {
  const now = Date.now();
  return {
    owner,
    // As the delivery worker says it (delivery/steps.ts): the row has no StatusCallback, so the store
    // does not look for one. Left out, every delivered message paid a lookup the server never makes.
    hasStatusCallback: row.status_callback !== null && row.status_callback !== undefined,
    mime: MIME,
    attempt: {
      sid: newSid("EA", now),
      message_sid: row.sid,
      account_sid: row.account_sid,
      attempt: 1,
      date_started: now,
      date_finished: now,
      outcome: "accepted",
      smtp_code: 250,
      response: "250 2.0.0 Ok: queued",
      error_code: null,
      error_message: null,
      recipients: JSON.stringify([
        { address: "john.doe@example.com", state: "accepted", smtp_code: 250, response: "250 ok" },
      ]),
    },
    status: "sent",
    errorCode: null,
    errorMessage: null,
    retryAt: null,
    dateDelivered: now,
  };
}

const dataDir = await mkdtemp(path.join(process.env.BENCH_TMPDIR ?? tmpdir(), "mailroom-store-bench-"));
const store: MailStore = threaded
  ? new ThreadedStore({ dataDir, databaseUrl: undefined, databasePoolSize: 1 })
  : openSqliteStore(path.join(dataDir, "mailroom.db"));
try {
  await store.migrate();
  const accountSid = await insertAccount(store, "store-bench@example.org");
  const owner = "store-bench";
  const cpuBefore = process.cpuUsage();
  const ioBefore = io();
  const started = performance.now();
  let previous: NewEmailMessage[] = [];
  for (let done = 0; done < messages || previous.length > 0; done += batch) {
    const rows =
      done < messages
        ? Array.from({ length: batch }, () =>
            emailRow(accountSid, {
              ...storedColumns(plainContent({ body: BODY })),
              date_created: Date.now(),
            }),
          )
        : [];
    const lease = { owner, expiresAt: Date.now() + 60_000 };
    await Promise.all([
      ...rows.map((row) => store.acceptEmail(row, lease)),
      ...previous.map((row) => store.recordAttempt(delivered(row, owner))),
    ]);
    previous = rows;
  }
  const wallUs = ((performance.now() - started) * 1000) / messages;
  const cpu = process.cpuUsage(cpuBefore);
  const cpuUs = (cpu.user + cpu.system) / messages;
  const ioAfter = io();
  const calls = (ioAfter.calls - ioBefore.calls) / messages;
  const kb = (ioAfter.written - ioBefore.written) / 1024 / messages;
  process.stdout.write(
    `store bench (${threaded ? "store thread" : "in process"}, SQLite): ${messages} messages in rounds of ${batch}: ` +
      `${cpuUs.toFixed(1)} µs CPU and ${wallUs.toFixed(1)} µs wall per message (accept + attempt record), ` +
      `${calls.toFixed(2)} I/O system calls and ${kb.toFixed(1)} KB written per message\n`,
  );
} finally {
  await store.close();
  await rm(dataDir, { recursive: true, force: true });
}
