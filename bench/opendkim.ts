/**
 * A private OpenDKIM instance for one run (the "Postfix relay with OpenDKIM" row): its own config and a
 * fresh RSA-2048 key for the From domain smtp-source writes, under the run's temporary directory; a milter
 * socket on a free loopback port. Sign-only, relaxed/relaxed, like Mailroom's DKIM row.
 */
import { createPublicKey } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { undoable } from "./cleanup.js";
import { freePort, LOOPBACK, waitForPort } from "./ports.js";
import { runCommand, spawnTracked, untilReady } from "./proc.js";

export const OPENDKIM = "/usr/sbin/opendkim";
const OPENDKIM_GENKEY = "/usr/sbin/opendkim-genkey";
const SELECTOR = "bench";

export interface OpenDkimInstance {
  readonly port: number;
  readonly pid: number;
  readonly version: string;
  readonly domain: string;
  readonly selector: string;
  /** The key's DNS TXT record, its public half as base64 DER SubjectPublicKeyInfo. */
  readonly record: string;
  /** Postfix main.cf lines that send every message through this milter. */
  readonly postfixSettings: string;
  /** OpenDKIM's last output, for error messages. */
  tail(): string;
  stop(): Promise<void>;
}

/** Why the OpenDKIM row cannot run here, or undefined when it can. */
export function openDkimUnavailable(): string | undefined {
  if (!existsSync(OPENDKIM)) return `${OPENDKIM} not found (install Debian's opendkim package to compare)`;
  if (!existsSync(OPENDKIM_GENKEY))
    return `${OPENDKIM_GENKEY} not found (install the opendkim-tools package)`;
  return undefined;
}

function config(dir: string, domain: string, keyFile: string, port: number): string {
  return `# Private OpenDKIM instance written by the Mailroom bench (bench/opendkim.ts).
Syslog no
Background no
Mode s
Domain ${domain}
Selector ${SELECTOR}
KeyFile ${keyFile}
Canonicalization relaxed/relaxed
SignatureAlgorithm rsa-sha256
Socket inet:${port}@${LOOPBACK}
PidFile ${dir}/opendkim.pid
# The key lives under the run's temp dir, whose parent (/tmp) anyone may write: OpenDKIM would refuse it.
RequireSafeKeys no
`;
}

/** Starts OpenDKIM under `baseDir`, signing mail From `domain` with a key generated for this run. */
export async function startOpenDkim(baseDir: string, domain: string): Promise<OpenDkimInstance> {
  const dir = path.join(baseDir, "opendkim");
  await mkdir(dir, { recursive: true });
  const removeDir = undoable("remove the OpenDKIM directory", () =>
    rm(dir, { recursive: true, force: true }),
  );
  const genkey = await runCommand(OPENDKIM_GENKEY, ["-b", "2048", "-d", domain, "-s", SELECTOR, "-D", dir]);
  if (genkey.code !== 0) throw new Error(`opendkim-genkey failed: ${genkey.stderr}`);
  const keyFile = path.join(dir, `${SELECTOR}.private`);
  const publicKey = createPublicKey(readFileSync(keyFile))
    .export({ type: "spki", format: "der" })
    .toString("base64");
  // "opendkim: OpenDKIM Filter v2.11.0" and build details: the version is enough.
  const banner = (await runCommand(OPENDKIM, ["-V"])).stdout;
  const version = `OpenDKIM ${/ v(\d[\w.]*)/.exec(banner)?.[1] ?? "(unknown version)"}`;

  const port = await freePort();
  const configFile = path.join(dir, "opendkim.conf");
  await writeFile(configFile, config(dir, domain, keyFile, port));
  const proc = spawnTracked("opendkim", OPENDKIM, ["-f", "-x", configFile]);
  const stop = async () => {
    await proc.stop();
    await removeDir();
  };
  try {
    await untilReady(proc, waitForPort(port, 10_000, "OpenDKIM"));
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    port,
    pid: proc.pid,
    version,
    domain,
    selector: SELECTOR,
    record: `v=DKIM1; k=rsa; p=${publicKey}`,
    // tempfail: if the milter cannot be reached, mail is refused rather than relayed unsigned.
    postfixSettings: [
      `smtpd_milters = inet:${LOOPBACK}:${port}`,
      "non_smtpd_milters = $smtpd_milters",
      "milter_default_action = tempfail",
      "",
    ].join("\n"),
    tail: proc.tail,
    stop,
  };
}
