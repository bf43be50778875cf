import { setFlagsFromString } from "node:v8";
import type { Config } from "../config/config.js";
import { ROOT_ROLE } from "../domain/accounts.js";
import { ApiError } from "../domain/errors.js";
import { API_BASE } from "../model/paths.js";
import { createMailroom, type Mailroom } from "../server.js";
import type { IssuedAccount } from "../services/accounts.js";
import { describeStore } from "../store/open-store.js";

export const BOOTSTRAP_EMAIL = "admin@mailroom.local";

/** `mailroom serve`: start, create the first account on an empty store, and stop cleanly on a signal. */
export async function runServe(config: Config): Promise<void> {
  boundHeapGrowth();
  // A closed stdout (`mailroom serve | head`) must not take the server down: the logs are lost, the mail is not.
  process.stdout.on("error", () => {});
  const mailroom = await createMailroom(config);
  const { logger } = mailroom;
  stopOnSignals(mailroom);

  const url = await mailroom.listen();
  // Only once listening: were the port taken, an account made first would keep its token unseen forever.
  const bootstrap = await createFirstAccount(mailroom);
  if (bootstrap) printWelcome(config.publicUrl ?? url, bootstrap.sid, bootstrap.authToken);
  // Last, so that whoever waits for this line finds the first account (and its credentials) ready.
  logger.info({ url, store: describeStore(config) }, "Mailroom is listening");
}

async function createFirstAccount(mailroom: Mailroom) {
  if ((await mailroom.store.countAccounts()) > 0) return undefined;
  let issued: IssuedAccount;
  try {
    issued = await mailroom.accounts.create({
      emailAddress: BOOTSTRAP_EMAIL,
      friendlyName: "Administrator",
      role: ROOT_ROLE,
    });
  } catch (error) {
    // Several nodes starting at once on an empty PostgreSQL: one of them creates it, the others go on.
    if (error instanceof ApiError && error.kind === "EmailAddressTaken") return undefined;
    throw error;
  }
  mailroom.logger.info({ sid: issued.account.sid }, "created the first account (Administrator)");
  return { sid: issued.account.sid, authToken: issued.authToken };
}

/** Printed to the terminal once, never to the log: this is the only time the AuthToken is shown. */
function printWelcome(url: string, sid: string, authToken: string): void {
  process.stdout.write(`
================================================================================
 Mailroom created your Administrator account. Save the AuthToken now:
 it is stored only as a hash and will not be shown again.

   AccountSid: ${sid}
   AuthToken:  ${authToken}

 Send your first email:

   curl -X POST ${url}${API_BASE}/Accounts/${sid}/Email/Messages \\
      -d 'To=john.doe@yourcompany.com' \\
      -d 'From=jane.doe@yourcompany.com' \\
      -d 'Body=This is a test' \\
      -d 'Subject=Test Email' \\
      -u '${sid}:${authToken}'
================================================================================

`);
}

function stopOnSignals(mailroom: Mailroom): void {
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      mailroom.logger.warn(`${signal} again: exiting now`);
      process.exit(1);
    }
    stopping = true;
    mailroom.logger.info(`${signal} received: finishing in-flight work, then stopping`);
    mailroom.close().then(
      () => {
        mailroom.logger.info("stopped");
        process.exit(0);
      },
      (error: unknown) => {
        mailroom.logger.error({ err: error }, "error while stopping");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

/**
 * After each full GC, V8 lets a heap grow to up to four times what survived before the next one. A
 * server's live heap is small (about 14 MB on the main thread at full load) and its garbage plentiful,
 * so it grew to about 55 MB of mostly garbage. Twice is enough: peak RSS about 25 MB lower at full
 * load, for no throughput measured (docs/performance.md). Set here rather than as a node flag, which
 * NODE_OPTIONS refuses, so every way of starting the server gets it; V8's flags are per process, so
 * the store and relay threads (started later) get it too.
 */
function boundHeapGrowth(): void {
  setFlagsFromString("--heap-growing-percent=100");
}
