import { randomBytes } from "node:crypto";
import {
  chmodSync,
  closeSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import type { FastifyBaseLogger } from "fastify";
import { ConfigError } from "../config/config.js";
import { newSecretKeyText, parseSecretKey, SealedSecretError, SecretBox } from "../domain/secret-box.js";
import type { MailStore } from "../store/types.js";

/** The key file in the data dir, used when MAILROOM_SECRET_KEY is unset. */
export const SECRET_KEY_FILE = "secret.key";

/** What the check value seals (see checkAgainstStore). */
const CHECK_NAME = "secret-box";
const CHECK_TEXT = "mailroom secret key check v1";

export interface SecretKeySource {
  /** MAILROOM_SECRET_KEY, already checked by the configuration. */
  secretKey: string | undefined;
  dataDir: string;
}

/**
 * The installation's SecretBox, from MAILROOM_SECRET_KEY or else `secret.key` in the data dir
 * (generated, mode 0600, at the first start, with a warning to back it up).
 *
 * Every process of an installation must use the same key: a secret sealed by one must open in the
 * others. Rather than refuse PostgreSQL without MAILROOM_SECRET_KEY, the database keeps a check value
 * (a known text sealed with the key, written by the first process to start) and a process whose key
 * cannot open it refuses to start, naming the fix. That catches every way keys diverge (a second node
 * with a fresh data dir, a typo in one node's MAILROOM_SECRET_KEY, a data dir lost and regenerated, a
 * database restored without its key), on SQLite as well, where the same single-data-dir setups keep
 * working without a setting.
 */
export async function openSecretBox(
  source: SecretKeySource,
  store: MailStore,
  logger: FastifyBaseLogger,
): Promise<SecretBox> {
  const fromSetting = source.secretKey !== undefined;
  const box = new SecretBox(
    fromSetting ? parseSecretKey(source.secretKey as string) : keyFromFile(source.dataDir, logger),
  );
  await checkAgainstStore(
    box,
    store,
    fromSetting ? "MAILROOM_SECRET_KEY" : join(source.dataDir, SECRET_KEY_FILE),
  );
  return box;
}

async function checkAgainstStore(box: SecretBox, store: MailStore, keyOrigin: string): Promise<void> {
  const stored = await store.claimSecretKeyCheck(CHECK_NAME, box.seal(CHECK_TEXT, CHECK_NAME), Date.now());
  let opened: string | undefined;
  try {
    opened = box.open(stored, CHECK_NAME);
  } catch (error) {
    if (!(error instanceof SealedSecretError)) throw error;
  }
  if (opened !== CHECK_TEXT) {
    throw new ConfigError(
      `the secret key (${keyOrigin}) is not the one this database's secrets were sealed with. Every process on one database needs the same key: set MAILROOM_SECRET_KEY to it (or copy secret.key from the data dir of the server that first started on this database). A lost key cannot be recovered: webhooks would need new secrets.`,
    );
  }
}

/** The key in the data dir's secret.key, created (atomically, 0600) if there is none. */
function keyFromFile(dataDir: string, logger: FastifyBaseLogger): Buffer {
  const path = join(dataDir, SECRET_KEY_FILE);
  let text = readIfExists(path);
  if (text === undefined) {
    mkdirSync(dataDir, { recursive: true });
    if (createKeyFile(path)) {
      logger.warn(
        { file: path },
        "generated a new secret key (it seals webhook signing secrets and DKIM keys): back it up with the database, or set MAILROOM_SECRET_KEY; without it those secrets cannot be read",
      );
    }
    text = readIfExists(path) ?? "";
  }
  try {
    return parseSecretKey(text);
  } catch (error) {
    throw new ConfigError(`${path} ${(error as Error).message}`);
  }
}

function readIfExists(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

/**
 * Writes a new key to a temporary file, then links it into place: the key file is never seen half
 * written, and of processes starting at once on one data dir, one creates it and the others read it.
 * False if another process got there first.
 */
function createKeyFile(path: string): boolean {
  const temporary = `${path}.${randomBytes(6).toString("hex")}.tmp`;
  const fd = openSync(temporary, "wx", 0o600);
  try {
    writeSync(fd, `${newSecretKeyText()}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    chmodSync(temporary, 0o600);
    linkSync(temporary, path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw error;
  } finally {
    rmSync(temporary, { force: true });
  }
}
