/**
 * Measurements of the authentication path, against a real `mailroom serve` child process (a fresh
 * SQLite data dir, or MAILROOM_DATABASE_URL when set):
 *
 *   node dist/bench/auth-probes.js timing [pairs]     known SID + wrong token vs unknown SID: latency
 *   node dist/bench/auth-probes.js bruteforce [n]     n wrong tokens, 10 at a time: how many 401 vs 429
 *   node dist/bench/auth-probes.js hashing [seconds]  /healthz latency while four clients change passwords
 *
 * Extra MAILROOM_* settings pass through from the environment (e.g. MAILROOM_AUTH_MAX_FAILURES=0 to
 * measure the timing without the throttle). Figures depend on the machine and its load: compare runs
 * made one after the other, not with figures from elsewhere.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { Agent, request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const CLI = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));
const API = "/restcomm/2012-04-24";

interface Served {
  child: ChildProcess;
  url: URL;
  sid: string;
  token: string;
  stop(): Promise<void>;
}

async function startServer(): Promise<Served> {
  const dataDir = mkdtempSync(join(tmpdir(), "mailroom-auth-probe-"));
  const child = spawn(process.execPath, [CLI, "serve"], {
    env: {
      ...process.env,
      MAILROOM_HOST: "127.0.0.1",
      MAILROOM_PORT: "0",
      MAILROOM_DATA_DIR: dataDir,
      MAILROOM_LOG_LEVEL: "info",
    },
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  const ready = new Promise<{ url: string; sid: string; token: string }>((resolve, reject) => {
    child.stdout?.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      const url = /"url":"(http:\/\/[^"]+)"[^\n]*"msg":"Mailroom is listening"/.exec(out)?.[1];
      const sid = /AccountSid: (AC[0-9a-f]{32})/.exec(out)?.[1];
      const token = /AuthToken: +([0-9a-f]{32})/.exec(out)?.[1];
      if (url && sid && token) resolve({ url, sid, token });
    });
    child.once("exit", (code) => reject(new Error(`serve exited with ${code}:\n${out}`)));
  });
  const { url, sid, token } = await ready;
  return {
    child,
    url: new URL(url),
    sid,
    token,
    async stop() {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

const agent = new Agent({ keepAlive: true, maxSockets: 16 });

interface Answer {
  status: number;
  body: string;
  micros: number;
}

function call(
  base: URL,
  method: string,
  path: string,
  auth?: { user: string; token: string },
  form?: Record<string, string>,
): Promise<Answer> {
  const body = form ? new URLSearchParams(form).toString() : undefined;
  const headers: Record<string, string> = {};
  if (auth) headers.authorization = `Basic ${Buffer.from(`${auth.user}:${auth.token}`).toString("base64")}`;
  if (body !== undefined) {
    headers["content-type"] = "application/x-www-form-urlencoded";
    headers["content-length"] = String(Buffer.byteLength(body));
  }
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const req = httpRequest(
      { host: base.hostname, port: base.port, method, path, headers, agent },
      (response) => {
        let text = "";
        response.setEncoding("utf8");
        response.on("data", (chunk: string) => {
          text += chunk;
        });
        response.on("end", () =>
          resolve({
            status: response.statusCode ?? 0,
            body: text,
            micros: Number(process.hrtime.bigint() - started) / 1000,
          }),
        );
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

const fmt = (micros: number) => `${micros.toFixed(0)} µs`;

async function createSubAccount(served: Served, email: string): Promise<{ sid: string; token: string }> {
  const created = await call(
    served.url,
    "POST",
    `${API}/Accounts.json`,
    { user: served.sid, token: served.token },
    { EmailAddress: email, Password: "correct horse battery" },
  );
  if (created.status !== 200) throw new Error(`create ${email}: ${created.status} ${created.body}`);
  const json = JSON.parse(created.body) as { sid: string; auth_token: string };
  return { sid: json.sid, token: json.auth_token };
}

/** Known SID with a wrong token vs an unknown SID (the same one each time, and a fresh one each time). */
async function timing(pairs: number): Promise<void> {
  const served = await startServer();
  try {
    const known = await createSubAccount(served, "known@example.org");
    const unknownSid = `AC${randomBytes(16).toString("hex")}`;
    const wrong = randomBytes(16).toString("hex");
    const path = (sid: string) => `${API}/Accounts/${sid}/Email/Messages.json`;
    const samples = { known: [] as number[], unknown: [] as number[], fresh: [] as number[] };
    const statuses = new Map<number, number>();
    for (let i = 0; i < 50; i++) await call(served.url, "GET", "/healthz");
    for (let i = 0; i < pairs; i++) {
      // Interleaved, in a rotating order, so drifting load hits all three alike.
      const order = [
        ["known", known.sid],
        ["unknown", unknownSid],
        ["fresh", `AC${randomBytes(16).toString("hex")}`],
      ] as const;
      for (let k = 0; k < 3; k++) {
        const [kind, sid] = order[(i + k) % 3] as (typeof order)[number];
        const answer = await call(served.url, "GET", path(sid), { user: sid, token: wrong });
        statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
        samples[kind].push(answer.micros);
      }
    }
    console.log(`timing: ${pairs} interleaved triples against ${served.url.origin}`);
    console.log(`statuses: ${[...statuses].map(([s, n]) => `${s}×${n}`).join(", ")}`);
    for (const [kind, values] of Object.entries(samples)) {
      console.log(
        `${kind.padEnd(8)} p25 ${fmt(quantile(values, 0.25))}  median ${fmt(quantile(values, 0.5))}  p75 ${fmt(quantile(values, 0.75))}`,
      );
    }
  } finally {
    await served.stop();
  }
}

/** `n` wrong tokens for one known SID, ten in flight at a time. */
async function bruteforce(n: number): Promise<void> {
  const served = await startServer();
  try {
    const known = await createSubAccount(served, "victim@example.org");
    const statuses = new Map<number, number>();
    let sent = 0;
    const started = Date.now();
    let retryAfter: string | undefined;
    const worker = async () => {
      while (sent < n) {
        sent += 1;
        const answer = await call(served.url, "GET", `${API}/Accounts/${known.sid}.json`, {
          user: known.sid,
          token: randomBytes(16).toString("hex"),
        });
        statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
        if (answer.status === 429 && retryAfter === undefined) retryAfter = answer.body;
      }
    };
    await Promise.all(Array.from({ length: 10 }, worker));
    const seconds = (Date.now() - started) / 1000;
    console.log(`bruteforce: ${n} wrong tokens in ${seconds.toFixed(2)} s (${(n / seconds).toFixed(0)}/s)`);
    console.log(`statuses: ${[...statuses].map(([s, c]) => `${s}×${c}`).join(", ")}`);
    if (retryAfter) console.log(`first 429 body: ${retryAfter}`);
    const real = await call(served.url, "GET", `${API}/Accounts/${known.sid}.json`, {
      user: known.sid,
      token: known.token,
    });
    console.log(`the right token from the same address right after: ${real.status}`);
  } finally {
    await served.stop();
  }
}

/** /healthz latency, alone and while four clients change passwords in a loop. */
async function hashing(seconds: number): Promise<void> {
  const served = await startServer();
  try {
    const accounts = await Promise.all(
      [1, 2, 3, 4].map((i) => createSubAccount(served, `changer${i}@example.org`)),
    );
    const probe = async (ms: number) => {
      const values: number[] = [];
      const until = Date.now() + ms;
      while (Date.now() < until) {
        values.push((await call(served.url, "GET", "/healthz")).micros);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      return values;
    };
    const idle = await probe(seconds * 1000);
    let stop = false;
    let changes = 0;
    const changers = accounts.map(async (account, i) => {
      while (!stop) {
        const answer = await call(
          served.url,
          "POST",
          `${API}/Accounts/${account.sid}.json`,
          { user: account.sid, token: account.token },
          { Password: `new password ${i} ${changes}` },
        );
        if (answer.status !== 200) throw new Error(`password change: ${answer.status} ${answer.body}`);
        changes += 1;
      }
    });
    const busy = await probe(seconds * 1000);
    stop = true;
    await Promise.all(changers);
    const line = (name: string, values: number[]) =>
      console.log(
        `${name.padEnd(28)} n=${values.length}  p50 ${(quantile(values, 0.5) / 1000).toFixed(2)} ms  p99 ${(quantile(values, 0.99) / 1000).toFixed(2)} ms  max ${(Math.max(...values) / 1000).toFixed(2)} ms`,
      );
    console.log(`hashing: /healthz every 5 ms for ${seconds} s, idle then with 4 password changers`);
    line("/healthz alone", idle);
    line("/healthz + 4 changers", busy);
    console.log(`password changes: ${changes} (${(changes / seconds).toFixed(1)}/s)`);
  } finally {
    await served.stop();
  }
}

const [mode, arg] = process.argv.slice(2);
if (mode === "timing") await timing(Number(arg ?? 1000));
else if (mode === "bruteforce") await bruteforce(Number(arg ?? 2000));
else if (mode === "hashing") await hashing(Number(arg ?? 10));
else {
  console.error("usage: node dist/bench/auth-probes.js timing [pairs] | bruteforce [n] | hashing [seconds]");
  process.exitCode = 2;
}
agent.destroy();
