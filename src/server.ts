import type { FastifyBaseLogger, FastifyInstance } from "fastify";
import { pino } from "pino";
import type { Config } from "./config/config.js";
import { StatusCallbacks } from "./delivery/callbacks.js";
import { createDispatcher } from "./delivery/create-dispatcher.js";
import { DeliveryWorker } from "./delivery/worker.js";
import { createHttpApp } from "./http/app.js";
import { AccountService } from "./services/accounts.js";
import { EmailMessageService } from "./services/email-messages.js";
import { openStore } from "./store/open-store.js";
import type { MailStore } from "./store/types.js";

export interface Mailroom {
  config: Config;
  store: MailStore;
  accounts: AccountService;
  app: FastifyInstance;
  worker: DeliveryWorker;
  logger: FastifyBaseLogger;
  /** Starts listening and delivering; resolves with the base URL actually bound (useful with port 0). */
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
 * Builds a whole Mailroom from its configuration: store (migrated), services, HTTP app and the
 * delivery worker with its transport. Nothing is global, so tests run several side by side.
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
  const dispatcher = createDispatcher(config, logger);
  const callbacks = new StatusCallbacks(logger);
  const worker = new DeliveryWorker(
    { store, dispatcher, callbacks, logger },
    {
      concurrency: config.deliveryConcurrency,
      leaseMs: config.leaseMs,
      pollIntervalMs: config.pollIntervalMs,
      shutdownTimeoutMs: config.shutdownTimeoutMs,
      memoryBytes: config.deliveryMemoryBytes,
      policy: {
        maxAttempts: config.maxAttempts,
        maxAgeMs: config.maxAgeMs,
        baseMs: config.retryBaseMs,
        maxMs: config.retryMaxMs,
      },
    },
  );
  // A message accepted here is delivered at once, not at the worker's next poll.
  const emails = new EmailMessageService(store, worker, {
    maxMessageBytes: config.maxMessageBytes,
    blockedExtensions: config.blockedAttachmentExtensions,
  });
  const app = await createHttpApp({
    store,
    accounts,
    emails,
    logger,
    bodyLimitBytes: config.bodyLimitBytes,
    bodyMemoryBytes: config.bodyMemoryBytes,
    bodyWaitMs: config.bodyWaitMs,
    maxMessageBytes: config.maxMessageBytes,
    logRequests: config.logLevel === "debug" || config.logLevel === "trace",
  });

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      const deadline = Date.now() + config.shutdownTimeoutMs;
      await app.close();
      await worker.stop();
      await callbacks.drain(Math.max(0, deadline - Date.now()));
      await dispatcher.close();
      await store.close();
    })();
    return closing;
  };
  return {
    config,
    store,
    accounts,
    app,
    worker,
    logger,
    async listen() {
      try {
        const address = await app.listen({ host: config.host, port: config.port });
        logger.info({ transport: dispatcher.description }, `delivery: ${dispatcher.description}`);
        await worker.start();
        return address;
      } catch (error) {
        // Half started (port taken, database refusing LISTEN): leave nothing running behind.
        await close().catch(() => {});
        throw error;
      }
    },
    close,
  };
}
