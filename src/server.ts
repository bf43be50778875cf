import type { FastifyBaseLogger, FastifyInstance } from "fastify";
import { pino } from "pino";
import type { Config } from "./config/config.js";
import { createHttpApp } from "./http/app.js";
import { AccountService } from "./services/accounts.js";
import { EmailMessageService } from "./services/email-messages.js";
import { openStore } from "./store/open-store.js";
import type { Store } from "./store/store.js";

export interface Mailroom {
  config: Config;
  store: Store;
  accounts: AccountService;
  app: FastifyInstance;
  logger: FastifyBaseLogger;
  /** Starts listening; resolves with the base URL actually bound (useful with port 0). */
  listen(): Promise<string>;
  /** Stops taking requests, finishes or releases in-flight work, and closes the store. */
  close(): Promise<void>;
}

export function createLogger(config: Config): FastifyBaseLogger {
  return pino({
    level: config.logLevel,
    // Credentials never reach the log, whatever a future log line includes.
    redact: ["req.headers.authorization", "authToken", "auth_token", "password"],
  });
}

/**
 * Builds a whole Mailroom from its configuration: store (migrated), services and HTTP app.
 * Nothing is global, so tests run several side by side.
 */
export async function createMailroom(config: Config, logger = createLogger(config)): Promise<Mailroom> {
  const store = openStore(config);
  try {
    await store.migrate();
  } catch (error) {
    await store.close().catch(() => {});
    throw error;
  }
  const accounts = new AccountService(store);
  const emails = new EmailMessageService(store, () => {});
  const app = createHttpApp({
    store,
    accounts,
    emails,
    logger,
    bodyLimitBytes: config.bodyLimitBytes,
    logRequests: config.logLevel === "debug" || config.logLevel === "trace",
  });

  let closing: Promise<void> | undefined;
  return {
    config,
    store,
    accounts,
    app,
    logger,
    async listen() {
      const address = await app.listen({ host: config.host, port: config.port });
      return address;
    },
    close() {
      closing ??= (async () => {
        await app.close();
        await store.close();
      })();
      return closing;
    },
  };
}
