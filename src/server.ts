import type { FastifyBaseLogger, FastifyInstance } from "fastify";
import { type DestinationStream, pino } from "pino";
import type { Config } from "./config/config.js";
import { createDispatcher } from "./delivery/create-dispatcher.js";
import { DeliveryWorker } from "./delivery/worker.js";
import type { SecretBox } from "./domain/secret-box.js";
import type { DomainService } from "./domains/domain-service.js";
import { setUpDomains } from "./domains/setup.js";
import { createHttpApp } from "./http/app.js";
import { AuthThrottle } from "./http/auth-throttle.js";
import { ErasureService } from "./lifecycle/erasure.js";
import { Purger } from "./lifecycle/purger.js";
import { MailroomMetrics } from "./metrics/metrics.js";
import { AccountService } from "./services/accounts.js";
import { EmailMessageService } from "./services/email-messages.js";
import { IdempotencyPurge } from "./services/idempotency-purge.js";
import { openSecretBox } from "./services/secret-key.js";
import { TemplateService } from "./services/templates.js";
import { WebhookService } from "./services/webhooks.js";
import { lockDataDir } from "./store/data-dir-lock.js";
import { openStore } from "./store/open-store.js";
import type { MailStore } from "./store/types.js";
import { WebhookWorker } from "./webhooks/worker.js";

export interface Mailroom {
  config: Config;
  store: MailStore;
  accounts: AccountService;
  /** Seals and opens stored secrets (webhook signing secrets) with the installation's key. */
  secrets: SecretBox;
  app: FastifyInstance;
  worker: DeliveryWorker;
  /** Sends webhook_queue's jobs: webhook deliveries and StatusCallbacks. */
  webhookWorker: WebhookWorker;
  /** Sending domains: keys, DNS records, verification (src/domains/). */
  domains: DomainService;
  logger: FastifyBaseLogger;
  /** The background purge of messages past their retention (src/lifecycle/). */
  purger: Purger;
  /** This instance's Prometheus metrics (GET /metrics); the webhook sender reports failures to it. */
  metrics: MailroomMetrics;
  /** Starts listening and delivering; resolves with the base URL actually bound (useful with port 0). */
  listen(): Promise<string>;
  /** Stops taking requests, finishes or releases in-flight work, and closes the store. */
  close(): Promise<void>;
}

/**
 * Credentials never reach the log, whatever a future log line includes: the fields where they could
 * appear (a request's headers, a field named after a secret, a webhook's secret) are censored. Named
 * paths only: a path that starts with a wildcard (`*.secret`) makes pino run the censor over every
 * child logger's bindings, and Fastify makes a child logger per request (2.8 KB more allocated per
 * message in `npm run bench:send-path`).
 */
export const LOG_REDACT_PATHS = [
  "req.headers.authorization",
  "req.headers.cookie",
  "headers.authorization",
  "authorization",
  "authToken",
  "auth_token",
  "AuthToken",
  "password",
  "Password",
  "secret",
  "token",
  "metricsToken",
  "webhook.secret",
  "account.auth_token",
];

/** The server's logger: JSON lines to stdout, or to `destination` (tests read them). */
export function createLogger(config: Config, destination?: DestinationStream): FastifyBaseLogger {
  const options = { level: config.logLevel, redact: LOG_REDACT_PATHS };
  return destination ? pino(options, destination) : pino(options);
}

/**
 * Builds a whole Mailroom from its configuration: store (migrated), services, HTTP app and the
 * delivery worker with its transport. Nothing is global, so tests run several side by side.
 */
export async function createMailroom(config: Config, logger = createLogger(config)): Promise<Mailroom> {
  // An SQLite file has one server: the second one to start stops here (the CLI takes no lock).
  const lock = config.databaseUrl ? undefined : await lockDataDir(config.dataDir);
  const metrics = new MailroomMetrics();
  const store = openStore(config, {
    onCallLatency: (thread, _method, ms) => metrics.storeCall(thread, ms),
  });
  let secrets: SecretBox;
  try {
    await store.migrate();
    secrets = await openSecretBox(config, store, logger);
    // Holding the lock, this server is the only owner of the file: any lease is a leftover of one
    // that died (kill -9, power loss), and waiting for it to run out would only delay its mail.
    if (lock) {
      const reclaimed = await store.reclaimLeases();
      if (reclaimed > 0) logger.info({ reclaimed }, "took back the deliveries a previous run left in flight");
      // Likewise Idempotency-Keys claimed by requests that never committed: their repeats go ahead.
      await store.releaseUnansweredIdempotencyKeys();
    }
  } catch (error) {
    await store.close().catch(() => {});
    lock?.release();
    throw error;
  }
  const accounts = new AccountService(store, {
    maxSubAccounts: config.maxSubAccounts,
    retention: { contentMs: config.contentRetentionMs, metadataMs: config.metadataRetentionMs },
  });
  const dispatcher = await createDispatcher(config, logger);
  // Sending domains: keys, records, checks; the directory answers the sign step and the policy from memory.
  const domains = setUpDomains(config, store, secrets, logger);
  const worker = new DeliveryWorker(
    { store, dispatcher, logger, metrics, signingKeys: domains.directory },
    {
      concurrency: config.deliveryConcurrency,
      leaseMs: config.leaseMs,
      heartbeatTimeoutMs: config.heartbeatTimeoutMs,
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
  // The webhook sender shares the delivery worker's owner (one heartbeat, one takeover). The store
  // tells it when a write queued jobs (listenWebhookJobs); replays nudge it themselves.
  const webhookWorker = new WebhookWorker(
    {
      store,
      owner: worker.owner,
      openSecret: (sealed) => secrets.open(sealed),
      logger,
      metrics,
    },
    {
      concurrency: config.webhookConcurrency,
      hostConcurrency: config.webhookHostConcurrency,
      timeoutMs: config.webhookTimeoutMs,
      allowPrivate: config.webhookAllowPrivate,
      retryBaseMs: config.webhookRetryBaseMs,
      disableAfterMs: config.webhookDisableAfterMs,
      pollIntervalMs: config.webhookPollIntervalMs,
      leaseMs: config.leaseMs,
      shutdownTimeoutMs: config.shutdownTimeoutMs,
    },
  );
  // A message accepted here is delivered at once, not at the worker's next poll.
  const emails = new EmailMessageService(
    store,
    worker,
    {
      maxMessageBytes: config.maxMessageBytes,
      blockedExtensions: config.blockedAttachmentExtensions,
    },
    {
      callbackGuard: { allowPrivate: config.webhookAllowPrivate },
      metrics,
      fromPolicy: domains.fromPolicy,
    },
  );
  const app = await createHttpApp({
    store,
    accounts,
    authThrottle: new AuthThrottle({
      maxFailures: config.authMaxFailures,
      windowMs: config.authFailureWindowMs,
      addressLockoutMs: config.authLockoutMs,
      userLockoutMs: config.authUserLockoutMs,
    }),
    emails,
    webhooks: new WebhookService(
      store,
      secrets,
      { maxWebhooks: config.maxWebhooks, allowPrivate: config.webhookAllowPrivate },
      webhookWorker,
    ),
    templates: new TemplateService(store),
    domains: domains.service,
    erasures: new ErasureService(store, secrets),
    logger,
    trustProxy: config.trustProxy,
    bodyLimitBytes: config.bodyLimitBytes,
    bodyMemoryBytes: config.bodyMemoryBytes,
    bodyWaitMs: config.bodyWaitMs,
    maxMessageBytes: config.maxMessageBytes,
    logRequests: config.logLevel === "debug" || config.logLevel === "trace",
    metrics,
    scrapeSources: {
      queueStats: () => store.queueStats(),
      relayConnections: () => dispatcher.connections(),
    },
    metricsToken: config.metricsToken,
  });

  const idempotencyPurge = new IdempotencyPurge(store, logger);
  const purger = new Purger(
    { store, logger },
    {
      defaults: { contentMs: config.contentRetentionMs, metadataMs: config.metadataRetentionMs },
      intervalMs: config.purgeIntervalMs,
    },
  );

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      await app.close();
      // Side by side: each gives its work in flight up to MAILROOM_SHUTDOWN_TIMEOUT_MS, then
      // releases what is left for the next start (or another process).
      await Promise.all([
        worker.stop(),
        webhookWorker.stop(),
        idempotencyPurge.stop(),
        domains.checker.stop(),
        purger.stop(),
      ]);
      await dispatcher.close();
      await store.close();
      lock?.release();
    })();
    return closing;
  };
  return {
    config,
    store,
    accounts,
    secrets,
    app,
    worker,
    webhookWorker,
    domains: domains.service,
    logger,
    purger,
    metrics,
    async listen() {
      try {
        const address = await app.listen({ host: config.host, port: config.port });
        logger.info({ transport: dispatcher.description }, `delivery: ${dispatcher.description}`);
        await worker.start();
        webhookWorker.start();
        idempotencyPurge.start();
        domains.checker.start();
        purger.start();
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
