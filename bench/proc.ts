/** Child processes that are always reaped: every spawn registers its own cleanup step. */
import { type ChildProcess, spawn } from "node:child_process";
import { isClosing, onCleanup } from "./cleanup.js";

export interface Tracked {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  /** Resolves with the exit code (or null when killed by a signal) once the process is gone. */
  readonly exited: Promise<number | null>;
  /** Sends `signal`, waits up to `graceMs`, then SIGKILL. Resolves once the process is gone. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<void>;
  /** The last lines the process wrote on stdout and stderr (kept for error messages). */
  tail(): string;
}

export interface SpawnOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Called with every chunk of stdout (as text). */
  onStdout?: (text: string) => void;
  /** Allows the spawn while cleanup runs (for commands that are part of cleaning up). */
  forCleanup?: boolean;
}

const TAIL_CHARS = 4000;

export function spawnTracked(
  name: string,
  command: string,
  args: string[],
  options: SpawnOptions = {},
): Tracked {
  if (isClosing() && !options.forCleanup) throw new Error(`not starting ${name}: the bench is shutting down`);
  const child = spawn(command, args, {
    env: options.env ?? process.env,
    cwd: options.cwd,
    stdio: ["ignore", "pipe", "pipe"],
  });
  if (child.pid === undefined) {
    throw new Error(`could not start ${name} (${command})`);
  }
  let tail = "";
  const keep = (text: string) => {
    tail = (tail + text).slice(-TAIL_CHARS);
  };
  child.stdout?.setEncoding("utf8");
  child.stderr?.setEncoding("utf8");
  child.stdout?.on("data", (text: string) => {
    if (options.onStdout) options.onStdout(text);
    else keep(text);
  });
  child.stderr?.on("data", keep);
  const exited = new Promise<number | null>((resolve) => {
    child.once("exit", (code) => resolve(code));
    child.once("error", (error) => {
      keep(String(error));
      resolve(-1);
    });
  });
  let gone = false;
  void exited.then(() => {
    gone = true;
  });

  const stop = async (signal: NodeJS.Signals = "SIGTERM", graceMs = 5000) => {
    if (gone) return;
    child.kill(signal);
    const timer = setTimeout(() => {
      if (!gone) child.kill("SIGKILL");
    }, graceMs);
    await exited;
    clearTimeout(timer);
  };
  const unregister = onCleanup(`stop ${name} (pid ${child.pid})`, () => stop());
  void exited.then(unregister);
  return { name, child, pid: child.pid, exited, stop, tail: () => tail };
}

export interface CommandResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion (killed after `timeoutMs`) and collects its output. */
export async function runCommand(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; timeoutMs?: number; forCleanup?: boolean } = {},
): Promise<CommandResult> {
  let stdout = "";
  const tracked = spawnTracked(command, command, args, {
    env: options.env,
    forCleanup: options.forCleanup,
    onStdout: (text) => {
      stdout += text;
    },
  });
  const timeoutMs = options.timeoutMs ?? 60_000;
  const timer = setTimeout(() => void tracked.stop("SIGKILL"), timeoutMs);
  const code = await tracked.exited;
  clearTimeout(timer);
  return { code, stdout, stderr: tracked.tail() };
}

/** Waits for `ready`, but fails fast (with the process's last output) if the process exits first. */
export async function untilReady<T>(proc: Tracked, ready: Promise<T>): Promise<T> {
  ready.catch(() => undefined); // a late rejection after the process died must not go unhandled
  const outcome = await Promise.race([
    ready.then((value) => ({ ready: true as const, value })),
    proc.exited.then((code) => ({ ready: false as const, code })),
  ]);
  if (!outcome.ready) {
    throw new Error(`${proc.name} exited (code ${outcome.code}) before it was ready:\n${proc.tail()}`);
  }
  return outcome.value;
}
