import { type ChildProcess, execFile, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);

/** The built CLI, as `npm start` and the `mailroom` bin run it. */
export const CLI = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function runCli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], {
      env: { ...process.env, ...env },
      timeout: 30_000,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === "number" ? e.code : -1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}

/** `mailroom accounts create`, as an operator would run it: the account's SID and its AuthToken. */
export async function createAccountWithCli(
  email: string,
  env: Record<string, string>,
): Promise<{ sid: string; token: string }> {
  const created = await runCli(["accounts", "create", "--email", email], env);
  if (created.code !== 0) throw new Error(`accounts create exited with ${created.code}: ${created.stderr}`);
  const account = JSON.parse(created.stdout) as { sid: string; auth_token: string };
  return { sid: account.sid, token: account.auth_token };
}

export interface ServeProcess {
  child: ChildProcess;
  url: string;
  /** Everything the process printed to stdout so far. */
  output(): string;
  /** Resolves with the exit code once the process has exited. */
  exited: Promise<number | null>;
}

/** Starts `mailroom serve` as a child process on a free port and waits until it listens. */
export async function startServeProcess(
  env: Record<string, string>,
  timeoutMs = 20_000,
): Promise<ServeProcess> {
  const child = spawn(process.execPath, [CLI, "serve"], {
    env: {
      ...process.env,
      MAILROOM_HOST: "127.0.0.1",
      MAILROOM_PORT: "0",
      MAILROOM_LOG_LEVEL: "info",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      // Leave nothing running behind a failed start.
      child.kill("SIGKILL");
      reject(new Error(`serve did not start in ${timeoutMs} ms:\n${stdout}\n${stderr}`));
    }, timeoutMs);
    const check = () => {
      const match = /"url":"(http:\/\/[^"]+)"[^\n]*"msg":"Mailroom is listening"/.exec(stdout);
      if (match?.[1]) {
        clearTimeout(timer);
        child.stdout?.off("data", check);
        resolve(match[1]);
      }
    };
    child.stdout?.on("data", check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited with ${code} before listening:\n${stdout}\n${stderr}`));
    });
  });
  return { child, url, output: () => stdout, exited };
}
