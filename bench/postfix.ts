/**
 * A private Postfix instance for one run: its own config, queue and data directories under the run's
 * temporary directory, an SMTP listener on a free loopback port, everything relayed to the sink. Stock
 * Postfix settings otherwise — in particular queue files are fsynced before "250 Ok", as always.
 */
import { existsSync, readFileSync } from "node:fs";
import { chmod, chown, mkdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { undoable } from "./cleanup.js";
import { freePort, LOOPBACK, waitForPort } from "./ports.js";
import { runCommand } from "./proc.js";
import { processGroup } from "./procfs.js";

export const POSTFIX = "/usr/sbin/postfix";
const POSTCONF = "/usr/sbin/postconf";
export const SMTP_SOURCE = "/usr/sbin/smtp-source";

export interface PostfixInstance {
  readonly port: number;
  readonly masterPid: number;
  readonly version: string;
  /** Delivery concurrency to the relay host (Postfix's per-destination limit, left at its default). */
  readonly concurrency: number;
  /** The last lines of the instance's mail log, for error messages. */
  logTail(lines?: number): string;
  stop(): Promise<void>;
}

/** Why the Postfix side cannot run here, or undefined when it can. */
export function postfixUnavailable(): string | undefined {
  for (const file of [POSTFIX, POSTCONF, SMTP_SOURCE]) {
    if (!existsSync(file)) return `${file} not found (install the postfix package to compare)`;
  }
  if (process.getuid?.() !== 0) return "a private Postfix instance can only be started as root";
  return undefined;
}

async function postconf(name: string, configDir?: string): Promise<string> {
  const args = configDir === undefined ? ["-xh", name] : ["-c", configDir, "-xh", name];
  let result = await runCommand(POSTCONF, args, { timeoutMs: 10_000 });
  if (result.code !== 0 && configDir === undefined) {
    // Installed with "No configuration" there is no system main.cf: Postfix's built-in defaults then.
    result = await runCommand(POSTCONF, ["-dh", name], { timeoutMs: 10_000 });
  }
  const value = result.stdout.trim();
  if (result.code !== 0 || value === "") throw new Error(`postconf -h ${name} failed: ${result.stderr}`);
  return value;
}

function uidOf(user: string): number {
  const line = readFileSync("/etc/passwd", "utf8")
    .split("\n")
    .find((entry) => entry.startsWith(`${user}:`));
  const uid = line ? Number(line.split(":")[2]) : Number.NaN;
  if (!Number.isInteger(uid)) throw new Error(`user ${user} (Postfix's mail_owner) does not exist`);
  return uid;
}

function mainCf(dir: string, owner: string, group: string, relayPort: number, extra: string): string {
  return `# Private Postfix instance written by the Mailroom bench (bench/postfix.ts).
compatibility_level = 3.6
queue_directory = ${dir}/spool
data_directory = ${dir}/data
mail_owner = ${owner}
setgid_group = ${group}
maillog_file = ${dir}/maillog
maillog_file_prefixes = ${dir}

myhostname = postfix.bench.localhost
mydomain = bench.localhost
myorigin = $myhostname
inet_interfaces = ${LOOPBACK}
inet_protocols = ipv4
mynetworks = 127.0.0.0/8

# Relay everything to the sink; no local delivery at all.
relayhost = [${LOOPBACK}]:${relayPort}
mydestination =
relay_domains =
local_recipient_maps =
local_transport = error:5.1.1 local delivery is disabled in the bench
alias_maps =
alias_database =
smtpd_relay_restrictions = permit_mynetworks, reject
smtp_tls_security_level = none
smtpd_tls_security_level = none
biff = no
append_dot_mydomain = no
${extra}`;
}

function masterCf(port: number): string {
  const services = [
    `${LOOPBACK}:${port} inet n - n - - smtpd`,
    "pickup unix n - n 60 1 pickup",
    "cleanup unix n - n - 0 cleanup",
    "qmgr unix n - n 300 1 qmgr",
    "rewrite unix - - n - - trivial-rewrite",
    "bounce unix - - n - 0 bounce",
    "defer unix - - n - 0 bounce",
    "trace unix - - n - 0 bounce",
    "verify unix - - n - 1 verify",
    "flush unix n - n 1000? 0 flush",
    "proxymap unix - - n - - proxymap",
    "proxywrite unix - - n - 1 proxymap",
    "smtp unix - - n - - smtp",
    "relay unix - - n - - smtp",
    "showq unix n - n - - showq",
    "error unix - - n - - error",
    "retry unix - - n - - error",
    "discard unix - - n - - discard",
    "anvil unix - - n - 1 anvil",
    "scache unix - - n - 1 scache",
    "postlog unix-dgram n - n - 1 postlogd",
  ];
  return `# Private Postfix instance written by the Mailroom bench (no chroot).\n${services.join("\n")}\n`;
}

/**
 * Starts the instance under `baseDir` (which must be traversable by the mail_owner user). `extraMainCf`
 * is appended to its main.cf (the OpenDKIM row's milter settings).
 */
export async function startPostfix(
  baseDir: string,
  relayPort: number,
  extraMainCf = "",
): Promise<PostfixInstance> {
  const dir = path.join(baseDir, "postfix");
  const etc = path.join(dir, "etc");
  const maillog = path.join(dir, "maillog");
  const port = await freePort();
  const owner = await postconf("mail_owner");
  const group = await postconf("setgid_group");
  const version = await postconf("mail_version");

  await mkdir(etc, { recursive: true });
  await mkdir(path.join(dir, "spool"));
  await mkdir(path.join(dir, "data"));
  await chmod(dir, 0o755);
  await chown(path.join(dir, "data"), uidOf(owner), -1);
  await chmod(path.join(dir, "data"), 0o700);
  await writeFile(path.join(etc, "main.cf"), mainCf(dir, owner, group, relayPort, extraMainCf));
  await writeFile(path.join(etc, "master.cf"), masterCf(port));

  const logTail = (lines = 15) => {
    try {
      return readFileSync(maillog, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
    } catch {
      return "(no mail log)";
    }
  };
  const postfix = (command: string) => runCommand(POSTFIX, ["-c", etc, command], { timeoutMs: 30_000 });

  // "check" creates the queue directories with the right owners and modes.
  const concurrency = Number(await postconf("smtp_destination_concurrency_limit", etc));
  const check = await postfix("check");
  if (check.code !== 0) throw new Error(`postfix check failed:\n${check.stderr}${logTail()}`);

  let masterPid = 0;
  const instanceProcesses = () => (masterPid > 0 ? processGroup(masterPid) : []);
  const stop = undoable("stop the private Postfix instance", async () => {
    await runCommand(POSTFIX, ["-c", etc, "stop"], { timeoutMs: 30_000, forCleanup: true });
    const deadline = Date.now() + 10_000;
    while (instanceProcesses().length > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    if (instanceProcesses().length > 0) {
      // The master leads its own process group; take every process of this instance with it.
      process.kill(-masterPid, "SIGKILL");
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    await rm(dir, { recursive: true, force: true });
  });

  const start = await postfix("start");
  if (start.code !== 0) throw new Error(`postfix start failed:\n${start.stderr}${logTail()}`);
  masterPid = Number(readFileSync(path.join(dir, "spool", "pid", "master.pid"), "utf8").trim());
  await waitForPort(port, 10_000, "Postfix smtpd");

  return {
    port,
    masterPid,
    version,
    concurrency,
    logTail,
    stop,
  };
}
