/**
 * `npm run bench:instructions`: a whole server's instructions per plain message, thread by thread,
 * counted by valgrind's callgrind. Instruction counts do not depend on the machine's load or the VM's
 * hour, which move the end-to-end bench by more than ±10% here, so two builds can be compared run
 * against run. The server runs under callgrind twice, sending the bench's plain message (1 KB form
 * body) `warm-up + few` and then `warm-up + many` times; per thread, the difference of the two counts
 * divided by the difference of messages is what one more message costs, start-up and warm-up excluded.
 * Under callgrind a server runs about 50 times slower; a pair of runs takes a few minutes.
 *
 *   INSTRUCTIONS_MESSAGES=500,1500   the two run lengths, after the warm-up
 *   INSTRUCTIONS_WARMUP=300          messages sent first in each run
 *   INSTRUCTIONS_CLI=path            another build's dist/src/cli/main.js (default: this one), to
 *                                    compare two commits with the same harness
 *   BENCH_TMPDIR=$TMPDIR             where the data directories and callgrind's files go
 *
 * Threads are named by what they run: the main thread (the first), the store's writer (SQLite that
 * writes its log), the store's reader (SQLite that does not), the relay thread (a worker thread
 * without SQLite), and V8's helpers (optimising compiler, GC), summed. It needs valgrind.
 */
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { postEmails } from "./load.js";
import { createAccount, MAILROOM_CLI, waitReady } from "./mailroom.js";
import { sendEmailRequest } from "./message.js";
import { freePort, LOOPBACK } from "./ports.js";
import { spawnTracked, untilReady } from "./proc.js";
import { startSink, waitForMessages } from "./sink.js";

const [few, many] = (process.env.INSTRUCTIONS_MESSAGES ?? "500,1500").split(",").map(Number) as [
  number,
  number,
];
const warmup = Number(process.env.INSTRUCTIONS_WARMUP ?? 300);
const cli = process.env.INSTRUCTIONS_CLI ?? MAILROOM_CLI;
if (!(few >= 0 && many > few && warmup >= 0))
  throw new Error("INSTRUCTIONS_MESSAGES must be two counts, the second larger");

type ThreadName = "main" | "store writer" | "store reader" | "relay" | "V8 helpers";

/** Instructions per thread for one server run of `warmup + messages` plain sends. */
async function countRun(messages: number): Promise<Map<ThreadName, number>> {
  const work = await mkdtemp(path.join(process.env.BENCH_TMPDIR ?? tmpdir(), "mailroom-instructions-"));
  const sink = await startSink("node");
  try {
    const port = await freePort();
    const env = {
      ...process.env,
      MAILROOM_HOST: LOOPBACK,
      MAILROOM_PORT: String(port),
      MAILROOM_DATA_DIR: path.join(work, "data"),
      MAILROOM_SMTP_URL: `smtp://${LOOPBACK}:${sink.port}`,
      MAILROOM_LOG_LEVEL: "warn",
      // Under callgrind every step is slow: the relay connection must not time out meanwhile.
      MAILROOM_SMTP_CONNECT_TIMEOUT_MS: "600000",
      MAILROOM_SMTP_SOCKET_TIMEOUT_MS: "600000",
    };
    const account = await createAccount(
      { dataDir: env.MAILROOM_DATA_DIR, databaseUrl: undefined },
      "cg@example.org",
      cli,
    );
    const server = spawnTracked(
      "mailroom serve (callgrind)",
      "valgrind",
      [
        "--tool=callgrind",
        "--separate-threads=yes",
        `--callgrind-out-file=${path.join(work, "callgrind.%p")}`,
        process.execPath,
        // As `npm start` runs it.
        "--max-semi-space-size=8",
        cli,
        "serve",
      ],
      { env },
    );
    const baseUrl = `http://${LOOPBACK}:${port}`;
    await untilReady(server, waitReady(baseUrl, 600_000));
    const request = sendEmailRequest(account, 1024);
    const total = warmup + messages;
    const load = await postEmails(baseUrl, request, { amount: total, connections: 10 });
    if (load.ok !== total)
      throw new Error(`${load.ok} of ${total} sends succeeded: ${JSON.stringify(load.statusCodes)}`);
    if (!(await waitForMessages(sink, total, 600_000))) throw new Error("the sink did not get every message");
    // SIGTERM: a graceful stop, after which callgrind writes one file per thread.
    await server.stop("SIGTERM", 600_000);
    return await threadCounts(work);
  } finally {
    await sink.close();
    await rm(work, { recursive: true, force: true });
  }
}

/** Reads callgrind's per-thread files (callgrind.<pid>-<thread>) and names each thread. */
async function threadCounts(dir: string): Promise<Map<ThreadName, number>> {
  const counts = new Map<ThreadName, number>();
  const files = (await readdir(dir)).filter((name) => /^callgrind\.\d+-\d+$/.test(name)).sort();
  for (const [index, name] of files.entries()) {
    const text = await readFile(path.join(dir, name), "utf8");
    const total = Number(/^(?:summary|totals): (\d+)/m.exec(text)?.[1] ?? 0);
    const thread = index === 0 ? "main" : workerThread(text);
    counts.set(thread, (counts.get(thread) ?? 0) + total);
  }
  return counts;
}

/** Which thread a callgrind file (not the first) is, by what it ran. */
function workerThread(text: string): ThreadName {
  if (!text.includes("node::worker::Worker::Run")) return "V8 helpers";
  if (text.includes("walChecksumBytes")) return "store writer";
  if (text.includes("sqlite3_step")) return "store reader";
  return "relay";
}

const short = await countRun(few);
const long = await countRun(many);
const per = (thread: ThreadName) => ((long.get(thread) ?? 0) - (short.get(thread) ?? 0)) / (many - few);
const threads: ThreadName[] = ["main", "store writer", "store reader", "relay", "V8 helpers"];
const rows = threads.map((thread) => `| ${thread} | ${Math.round(per(thread)).toLocaleString("en-US")} |`);
const all = threads.reduce((sum, thread) => sum + per(thread), 0);
process.stdout.write(
  `Instructions per plain message (callgrind; runs of ${warmup}+${few} and ${warmup}+${many} sends; ${cli}):\n` +
    `| thread | instructions |\n|--|--:|\n${rows.join("\n")}\n| all | ${Math.round(all).toLocaleString("en-US")} |\n`,
);
