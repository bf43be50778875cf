/**
 * Mailroom as a separate process, exactly as an operator runs it: `mailroom accounts create`, then
 * `mailroom serve` with the relay pointing at the bench's sink. Also tallies the warnings and errors it logs.
 */
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { freePort, LOOPBACK } from "./ports.js";
import { runCommand, spawnTracked, type Tracked, untilReady } from "./proc.js";
import { cpuSeconds, ioSyscalls, peakRssKb, threadCpuSeconds } from "./procfs.js";

export const MAILROOM_CLI = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));

/**
 * The node flags of `npm start` (`node --flag … dist/src/cli/main.js serve`), the README's way to
 * start Mailroom, so the bench measures the server as users start it.
 */
function serverNodeFlags(): string[] {
  const packageJson = fileURLToPath(new URL("../../package.json", import.meta.url));
  const start: string = JSON.parse(readFileSync(packageJson, "utf8")).scripts.start;
  return start.split(/\s+/).filter((word) => word.startsWith("--"));
}

/** Settings the bench decides for each run; everything else MAILROOM_* passes through from the environment. */
const BENCH_OWNED = [
  "MAILROOM_HOST",
  "MAILROOM_PORT",
  "MAILROOM_DATA_DIR",
  "MAILROOM_DATABASE_URL",
  "MAILROOM_SMTP_URL",
  "MAILROOM_LOG_LEVEL",
  "MAILROOM_PUBLIC_URL",
];

export interface Credentials {
  sid: string;
  authToken: string;
}

export interface StoreTarget {
  dataDir: string;
  /** PostgreSQL URL, or undefined for the embedded SQLite store in dataDir. */
  databaseUrl: string | undefined;
}

export interface LogTally {
  warn: number;
  error: number;
  /** The first few distinct warning/error messages. */
  samples: string[];
}

export interface MailroomProcess {
  readonly baseUrl: string;
  readonly pid: number;
  /** CPU seconds (user + system) the server has used so far. */
  cpuSeconds(): number | undefined;
  /** CPU seconds so far per thread, by thread id (the main thread's id is the pid). */
  threadCpuSeconds(): Map<number, number>;
  /** Read and write system calls the server has made so far (socket and file I/O alike). */
  ioSyscalls(): number | undefined;
  /** Peak resident set size so far (the kernel's high-water mark), in kB. */
  peakRssKb(): number | undefined;
  logs(): LogTally;
  /** Throws (with the server's last output) if the process has died on its own. */
  assertAlive(): void;
  /** SIGTERM (graceful shutdown), SIGKILL after the grace period. */
  stop(): Promise<void>;
}

export function mailroomUnavailable(): string | undefined {
  if (!existsSync(MAILROOM_CLI)) return `${MAILROOM_CLI} not found (run "npm run build" first)`;
  return undefined;
}

/** MAILROOM_* settings from the environment that reach the benchmarked server (shown in the report). */
export function passedThroughSettings(): Record<string, string> {
  const settings: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (key.startsWith("MAILROOM_") && !BENCH_OWNED.includes(key) && value !== undefined)
      settings[key] = value;
  }
  return settings;
}

function environment(target: StoreTarget, extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of BENCH_OWNED) delete env[key];
  env.MAILROOM_DATA_DIR = target.dataDir;
  if (target.databaseUrl !== undefined) env.MAILROOM_DATABASE_URL = target.databaseUrl;
  env.MAILROOM_LOG_LEVEL = "warn";
  return { ...env, ...extra };
}

/** `cli`: another build's dist/src/cli/main.js (bench:instructions compares builds); this one's by default. */
export async function createAccount(
  target: StoreTarget,
  email: string,
  cli = MAILROOM_CLI,
): Promise<Credentials> {
  const result = await runCommand(process.execPath, [cli, "accounts", "create", "--email", email], {
    env: environment(target, {}),
    timeoutMs: 60_000,
  });
  if (result.code !== 0) {
    throw new Error(
      `mailroom accounts create failed (exit ${result.code}):\n${result.stderr}${result.stdout}`,
    );
  }
  let account: { sid?: unknown; auth_token?: unknown };
  try {
    account = JSON.parse(result.stdout) as typeof account;
  } catch {
    throw new Error(`mailroom accounts create did not print JSON:\n${result.stdout}`);
  }
  if (typeof account.sid !== "string" || typeof account.auth_token !== "string") {
    throw new Error(`mailroom accounts create printed no sid/auth_token:\n${result.stdout}`);
  }
  return { sid: account.sid, authToken: account.auth_token };
}

export async function waitReady(baseUrl: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "no answer";
  while (Date.now() < deadline) {
    try {
      const response = await fetch(`${baseUrl}/readyz`, { signal: AbortSignal.timeout(1000) });
      if (response.status === 200) return;
      last = `HTTP ${response.status}`;
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`Mailroom was not ready at ${baseUrl}/readyz within ${timeoutMs} ms (${last})`);
}

function logTally(): { onText: (text: string) => void; tally: LogTally } {
  const tally: LogTally = { warn: 0, error: 0, samples: [] };
  let partial = "";
  const onText = (text: string) => {
    const lines = (partial + text).split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) {
      if (line.trim() === "") continue;
      let level = 50; // unparseable output counts as an error: it should not be there at warn level
      let message = line;
      try {
        const entry = JSON.parse(line) as { level?: number; msg?: string; err?: { message?: string } };
        level = typeof entry.level === "number" ? entry.level : 50;
        message = [entry.msg, entry.err?.message].filter(Boolean).join(": ") || line;
      } catch {
        // keep the raw line
      }
      if (level >= 50) tally.error++;
      else if (level >= 40) tally.warn++;
      else continue;
      if (tally.samples.length < 5 && !tally.samples.includes(message))
        tally.samples.push(message.slice(0, 300));
    }
  };
  return { onText, tally };
}

/**
 * Starts `mailroom serve` relaying to 127.0.0.1:`smtpPort`. With `profileDir`, Node's CPU profiler runs for
 * the server's whole life and writes one profile per thread (main, store) into that directory when it stops.
 * `defaults` are MAILROOM_* settings for this run that a variable set for the bench itself overrides.
 */
export async function startMailroom(
  target: StoreTarget,
  smtpPort: number,
  profileDir?: string,
  defaults: Record<string, string> = {},
): Promise<MailroomProcess> {
  const port = await freePort();
  const baseUrl = `http://${LOOPBACK}:${port}`;
  const { onText, tally } = logTally();
  const env = environment(target, {
    // Settings of the scenario's own, unless the environment of the bench sets them.
    ...Object.fromEntries(Object.entries(defaults).filter(([key]) => process.env[key] === undefined)),
    MAILROOM_HOST: LOOPBACK,
    MAILROOM_PORT: String(port),
    MAILROOM_SMTP_URL: `smtp://${LOOPBACK}:${smtpPort}`,
  });
  const profile = profileDir ? ["--cpu-prof", "--cpu-prof-dir", profileDir] : [];
  // Any other flags for the server's node (e.g. --heap-prof): BENCH_NODE_FLAGS, space-separated.
  const extraFlags = process.env.BENCH_NODE_FLAGS?.split(" ").filter(Boolean) ?? [];
  const proc: Tracked = spawnTracked(
    "mailroom serve",
    process.execPath,
    [...serverNodeFlags(), ...profile, ...extraFlags, MAILROOM_CLI, "serve"],
    {
      env,
      onStdout: onText,
    },
  );
  proc.child.stderr?.on("data", onText);
  let stopping = false;
  let died: string | undefined;
  void proc.exited.then((code) => {
    if (!stopping) died = `exit code ${code}, signal ${proc.child.signalCode ?? "none"}`;
  });
  let peak: number | undefined;
  const readPeak = () => {
    peak = peakRssKb(proc.pid) ?? peak; // keep the last reading once the process is gone
    return peak;
  };
  await untilReady(proc, waitReady(baseUrl, 60_000));
  return {
    baseUrl,
    pid: proc.pid,
    peakRssKb: readPeak,
    cpuSeconds: () => cpuSeconds(proc.pid),
    threadCpuSeconds: () => threadCpuSeconds(proc.pid),
    ioSyscalls: () => ioSyscalls(proc.pid),
    logs: () => tally,
    assertAlive() {
      readPeak();
      if (died)
        throw new Error(
          `Mailroom (pid ${proc.pid}) died during the run (${died}):\n${[...tally.samples, proc.tail()].join("\n")}`,
        );
    },
    stop: async () => {
      readPeak();
      stopping = true;
      await proc.stop("SIGTERM", 20_000);
    },
  };
}
