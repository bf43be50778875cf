/**
 * Configuration: every setting has one MAILROOM_* environment variable and one CLI flag, a default,
 * and a parser that rejects bad values with a message naming the setting. Parsed once at start.
 */
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { hostname as osHostname } from "node:os";
import { type DomainRate, parseDomainLimit, parseDomainRate } from "../delivery/mx/domain-gate.js";
import { parseWarmup, type WarmupSchedule } from "../delivery/mx/warmup.js";
import { type DnsServer, parseDnsServer } from "../dns/resolver.js";
import { DEFAULT_MIN_TTL_MS, MAX_TTL_MS } from "../dns/ttl-cache.js";
import { parseSecretKey } from "../domain/secret-box.js";
import { DURATION_FORMS, parseDuration } from "../lifecycle/durations.js";
import { readRelayUrlOptions } from "./relay-url.js";

export interface Config {
  host: string;
  port: number;
  dataDir: string;
  databaseUrl: string | undefined;
  databasePoolSize: number;
  queryTimeoutMs: number;
  logLevel: string;
  bodyLimitBytes: number;
  bodyMemoryBytes: number;
  bodyWaitMs: number;
  maxMessageBytes: number;
  blockedAttachmentExtensions: readonly string[];
  publicUrl: string | undefined;
  maxSubAccounts: number;
  /** MAILROOM_SECRET_KEY as given (checked at load; parsed by parseSecretKey); unset: secret.key in the data dir. */
  secretKey: string | undefined;
  /** The most webhooks one account may have (MAILROOM_MAX_WEBHOOKS). */
  maxWebhooks: number;
  authMaxFailures: number;
  authFailureWindowMs: number;
  authLockoutMs: number;
  authUserLockoutMs: number;
  trustProxy: string[] | false;
  /** MAILROOM_METRICS_TOKEN: when set, GET /metrics needs it as a Bearer token. Never logged. */
  metricsToken: string | undefined;
  /**
   * MAILROOM_DELIVERY_MODE: where mail goes. `relay` (MAILROOM_SMTP_URL) is the default when a relay is
   * set, `capture` (nothing leaves) otherwise.
   */
  deliveryMode: DeliveryMode;
  smtpUrl: string | undefined;
  /** The PEM text of MAILROOM_SMTP_CA_FILE, read at start. */
  smtpCa: string | undefined;
  smtpPoolSize: number;
  smtpStartTls: "opportunistic" | "required";
  smtpConnectTimeoutMs: number;
  smtpSocketTimeoutMs: number;
  deliveryConcurrency: number;
  deliveryMemoryBytes: number;
  /** null: no attempt limit, only maxAgeMs ends retrying (as Postfix's queue lifetime does). */
  maxAttempts: number | null;
  maxAgeMs: number;
  retryBaseMs: number;
  retryMaxMs: number;
  leaseMs: number;
  heartbeatTimeoutMs: number;
  pollIntervalMs: number;
  shutdownTimeoutMs: number;
  /** MAILROOM_DNS_SERVERS: the DNS servers lookups ask; undefined: the system's. */
  dnsServers: DnsServer[] | undefined;
  /** MAILROOM_WEBHOOK_ALLOW_PRIVATE: webhooks and callbacks may reach loopback, private, … addresses. */
  webhookAllowPrivate: boolean;
  webhookRetryBaseMs: number;
  webhookTimeoutMs: number;
  webhookConcurrency: number;
  webhookHostConcurrency: number;
  webhookDisableAfterMs: number;
  webhookPollIntervalMs: number;
  /** MAILROOM_MAX_DOMAINS: the most sending domains one account may have. */
  maxDomains: number;
  /** MAILROOM_REQUIRE_VERIFIED_DOMAIN; undefined: on for direct-to-MX delivery, off otherwise (requireVerifiedDomain()). */
  requireVerifiedDomain: boolean | undefined;
  /** MAILROOM_SPF_INCLUDE: the SPF mechanisms a domain's SPF record is told to have; undefined: a:{the bounce host}. */
  spfMechanisms: string[] | undefined;
  /** MAILROOM_DOMAIN_CHECK_INTERVAL_MS: how often each domain's records are looked up again. */
  domainCheckIntervalMs: number;
  /** Direct-to-MX delivery (MAILROOM_DELIVERY_MODE=mx, docs/delivery.md#direct-to-mx-delivery). */
  mxPort: number;
  /** MAILROOM_HOSTNAME: the EHLO name; the machine's host name by default. */
  hostname: string;
  mxPoolSize: number;
  /** Lower-case domains whose MX must offer STARTTLS with a verified certificate. */
  tlsRequiredDomains: readonly string[];
  /** PEM text of MAILROOM_MX_CA_FILE: CAs trusted for MX certificates besides the system's. */
  mxCa: string | undefined;
  /** MAILROOM_DOMAIN_RATES: messages per period for recipient domains (mx mode). */
  domainRates: DomainRate[];
  /** MAILROOM_DOMAIN_BACKOFF_MS: a domain's first wait after it said "slow down" (mx mode). */
  domainBackoffMs: number;
  /** MAILROOM_MTA_STS_PORT: the HTTPS port MTA-STS policies are fetched from (443; tests only). */
  mtaStsPort: number;
  /** MAILROOM_MX_ALLOW_PRIVATE: MX hosts (and MTA-STS policy hosts) may be loopback, private, … addresses. */
  mxAllowPrivate: boolean;
  /** MAILROOM_DNS_MIN_TTL_MS: the least time an MX, address or negative answer is cached (mx mode). */
  dnsMinTtlMs: number;
  /** MAILROOM_DOMAIN_CONNECTIONS: most transactions at once per recipient domain (mx mode). */
  domainConnections: Array<{ domain: string; connections: number }>;
  /** Issue 16: how long content and metadata are kept (ms), and how often the purge runs. */
  contentRetentionMs: number;
  metadataRetentionMs: number;
  purgeIntervalMs: number;
  /** MAILROOM_DOMAIN_WARMUP: warm-up schedules per recipient domain or `*` (mx mode). */
  domainWarmup: WarmupSchedule[];
}

export class ConfigError extends Error {}

/** The delivery modes MAILROOM_DELIVERY_MODE accepts. */
export const DELIVERY_MODES = ["relay", "capture", "mx"] as const;
export type DeliveryMode = (typeof DELIVERY_MODES)[number];

interface Setting<K extends keyof Config> {
  key: K;
  env: string;
  flag: string;
  description: string;
  defaultText: string;
  parse(raw: string | undefined, name: string): Config[K];
}

function setting<K extends keyof Config>(s: Setting<K>): Setting<K> {
  return s;
}

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

/** Executables and scripts that mail clients run when opened: refused by default, as Gmail does. */
const DEFAULT_BLOCKED = [
  "exe",
  "com",
  "bat",
  "cmd",
  "scr",
  "pif",
  "cpl",
  "msi",
  "msp",
  "dll",
  "js",
  "jse",
  "vbs",
  "vbe",
  "wsf",
  "wsh",
  "hta",
  "ps1",
  "jar",
  "lnk",
  "reg",
  "sh",
  "app",
];

export const SETTINGS = [
  setting({
    key: "host",
    env: "MAILROOM_HOST",
    flag: "--host",
    description: "address the HTTP API listens on",
    defaultText: "127.0.0.1",
    parse: (raw) => nonEmpty(raw, "127.0.0.1"),
  }),
  setting({
    key: "port",
    env: "MAILROOM_PORT",
    flag: "--port",
    description: "TCP port of the HTTP API (0 picks a free one)",
    defaultText: "8080",
    parse: (raw, name) => integer(raw, 8080, name, 0, 65535),
  }),
  setting({
    key: "dataDir",
    env: "MAILROOM_DATA_DIR",
    flag: "--data-dir",
    description: "directory for the SQLite database",
    defaultText: "./data",
    parse: (raw) => nonEmpty(raw, "./data"),
  }),
  setting({
    key: "databaseUrl",
    env: "MAILROOM_DATABASE_URL",
    flag: "--database-url",
    description: "postgres://… to use PostgreSQL instead of SQLite",
    defaultText: "(unset: SQLite)",
    parse: (raw, name) => optionalUrl(raw, name, ["postgres:", "postgresql:"]),
  }),
  setting({
    key: "databasePoolSize",
    env: "MAILROOM_DATABASE_POOL_SIZE",
    flag: "--database-pool-size",
    description: "PostgreSQL connections per process",
    defaultText: "10",
    parse: (raw, name) => integer(raw, 10, name, 1, 1000),
  }),
  setting({
    key: "queryTimeoutMs",
    env: "MAILROOM_QUERY_TIMEOUT_MS",
    flag: "--query-timeout-ms",
    description:
      "longest a database query may run (PostgreSQL: statement_timeout; SQLite: how long an API read may take, waiting included); longer gets 503",
    defaultText: "5000",
    parse: (raw, name) => integer(raw, 5000, name, 100, 600_000),
  }),
  setting({
    key: "logLevel",
    env: "MAILROOM_LOG_LEVEL",
    flag: "--log-level",
    description: `log level: ${LOG_LEVELS.join(", ")}`,
    defaultText: "info",
    parse: (raw, name) => oneOf(raw, "info", name, LOG_LEVELS),
  }),
  setting({
    key: "bodyLimitBytes",
    env: "MAILROOM_BODY_LIMIT",
    flag: "--body-limit",
    description: "largest request body in bytes (larger gets 413)",
    defaultText: "(room for MAILROOM_MAX_MESSAGE_BYTES of attachments in base64, plus 1 MiB)",
    // 0 until loadConfig derives it from maxMessageBytes.
    parse: (raw, name) => (raw === undefined ? 0 : integer(raw, 0, name, 1024, 1024 * 1024 * 1024)),
  }),
  setting({
    key: "bodyMemoryBytes",
    env: "MAILROOM_BODY_MEMORY",
    flag: "--body-memory",
    description:
      "request body bytes processed at once; more waits up to MAILROOM_BODY_WAIT_MS, then gets 503",
    defaultText: "16777216 (16 MiB: one body of the default largest size at a time, small ones beside it)",
    parse: (raw, name) => integer(raw, 16 * 1024 * 1024, name, 1024, 16 * 1024 * 1024 * 1024),
  }),
  setting({
    key: "bodyWaitMs",
    env: "MAILROOM_BODY_WAIT_MS",
    flag: "--body-wait-ms",
    description: "how long a request waits for MAILROOM_BODY_MEMORY to have room before a 503",
    defaultText: "5000",
    parse: (raw, name) => integer(raw, 5000, name, 0, 600_000),
  }),
  setting({
    key: "maxMessageBytes",
    env: "MAILROOM_MAX_MESSAGE_BYTES",
    flag: "--max-message-bytes",
    description: "largest total of a message's decoded attachments in bytes (more gets 413)",
    defaultText: "10485760 (10 MiB)",
    parse: (raw, name) => integer(raw, 10 * 1024 * 1024, name, 0, 512 * 1024 * 1024),
  }),
  setting({
    key: "blockedAttachmentExtensions",
    env: "MAILROOM_BLOCKED_ATTACHMENTS",
    flag: "--blocked-attachments",
    description:
      "attachment types refused by file name or content: comma-separated extensions, or none to allow all",
    defaultText: DEFAULT_BLOCKED.join(","),
    parse: (raw, name) => extensionList(raw, name),
  }),
  setting({
    key: "publicUrl",
    env: "MAILROOM_PUBLIC_URL",
    flag: "--public-url",
    description: "base URL clients use, shown in the start-up example",
    defaultText: "(http://HOST:PORT)",
    parse: (raw, name) => optionalUrl(raw, name, ["http:", "https:"]),
  }),
  setting({
    key: "maxSubAccounts",
    env: "MAILROOM_MAX_SUBACCOUNTS",
    flag: "--max-subaccounts",
    description:
      "most accounts one account may have below it, all levels and closed ones counted (Administrators are not limited; 0: only they create sub-accounts)",
    defaultText: "1000",
    parse: (raw, name) => integer(raw, 1000, name, 0, 1_000_000),
  }),
  setting({
    key: "secretKey",
    env: "MAILROOM_SECRET_KEY",
    flag: "--secret-key",
    description:
      "the key that seals stored secrets (webhook signing secrets, DKIM private keys): 64+ hex characters or base64 of 32+ random bytes; every process on one database needs the same one. Back it up",
    defaultText: "(unset: secret.key in the data dir, generated at the first start)",
    parse: (raw, name) => secretKey(raw, name),
  }),
  setting({
    key: "maxWebhooks",
    env: "MAILROOM_MAX_WEBHOOKS",
    flag: "--max-webhooks",
    description: "most webhooks one account may have",
    defaultText: "20",
    parse: (raw, name) => integer(raw, 20, name, 0, 10_000),
  }),
  setting({
    key: "authMaxFailures",
    env: "MAILROOM_AUTH_MAX_FAILURES",
    flag: "--auth-max-failures",
    description:
      "failed authentications per client address, and per user name, within the window before a lockout (429); 0 turns throttling off",
    defaultText: "10",
    parse: (raw, name) => integer(raw, 10, name, 0, 1_000_000),
  }),
  setting({
    key: "authFailureWindowMs",
    env: "MAILROOM_AUTH_FAILURE_WINDOW_MS",
    flag: "--auth-failure-window-ms",
    description: "the window in which failed authentications are counted",
    defaultText: "60000",
    parse: (raw, name) => integer(raw, 60_000, name, 1000, 86_400_000),
  }),
  setting({
    key: "authLockoutMs",
    env: "MAILROOM_AUTH_LOCKOUT_MS",
    flag: "--auth-lockout-ms",
    description: "how long a client address is refused after too many failed authentications",
    defaultText: "60000",
    parse: (raw, name) => integer(raw, 60_000, name, 1000, 86_400_000),
  }),
  setting({
    key: "authUserLockoutMs",
    env: "MAILROOM_AUTH_USER_LOCKOUT_MS",
    flag: "--auth-user-lockout-ms",
    description:
      "how long a user name is refused after too many failed authentications, from addresses it has not lately authenticated from",
    defaultText: "5000",
    parse: (raw, name) => integer(raw, 5000, name, 1000, 3_600_000),
  }),
  setting({
    key: "trustProxy",
    env: "MAILROOM_TRUST_PROXY",
    flag: "--trust-proxy",
    description:
      "proxies (load balancers) whose X-Forwarded-For gives the client address: comma-separated IP addresses or CIDR blocks, or loopback, linklocal, uniquelocal",
    defaultText: "(unset: the connection's address is the client's)",
    parse: (raw, name) => proxyList(raw, name),
  }),
  setting({
    key: "metricsToken",
    env: "MAILROOM_METRICS_TOKEN",
    flag: "--metrics-token",
    description:
      "when set, GET /metrics (Prometheus) needs Authorization: Bearer <this token>; at least 16 visible ASCII characters",
    defaultText: "(unset: /metrics is open)",
    parse: (raw, name) => bearerToken(raw, name),
  }),
  setting({
    key: "dnsServers",
    env: "MAILROOM_DNS_SERVERS",
    flag: "--dns-servers",
    description:
      "DNS servers for domain verification and MX lookups: comma-separated host[:port] (IPv6 as [addr]:port)",
    defaultText: "(unset: the system's)",
    parse: (raw, name) => dnsServerList(raw, name),
  }),
  setting({
    key: "deliveryMode",
    env: "MAILROOM_DELIVERY_MODE",
    flag: "--delivery-mode",
    description: `where mail goes: ${DELIVERY_MODES.join(", ")} (relay needs MAILROOM_SMTP_URL; mx delivers to each recipient domain's MX hosts)`,
    defaultText: "(relay when MAILROOM_SMTP_URL is set, capture otherwise)",
    // Resolved against smtpUrl in loadConfig; "" marks "not given".
    parse: (raw, name) =>
      raw === undefined ? ("" as DeliveryMode) : oneOf(raw, "capture", name, DELIVERY_MODES),
  }),
  setting({
    key: "smtpUrl",
    env: "MAILROOM_SMTP_URL",
    flag: "--smtp-url",
    description: "relay: smtp://user:pass@host:587 or smtps://…:465; unset captures mail locally",
    defaultText: "(unset: capture)",
    parse: (raw, name) => relayUrl(raw, name),
  }),
  setting({
    key: "smtpCa",
    env: "MAILROOM_SMTP_CA_FILE",
    flag: "--smtp-ca-file",
    description: "PEM file of the CA (or self-signed certificate) the relay's TLS certificate must chain to",
    defaultText: "(unset: the system's CAs)",
    parse: (raw, name) => caFile(raw, name),
  }),
  setting({
    key: "smtpPoolSize",
    env: "MAILROOM_SMTP_POOL_SIZE",
    flag: "--smtp-pool-size",
    description: "SMTP connections kept open to the relay (Postfix opens up to 20 per destination)",
    defaultText: "20",
    parse: (raw, name) => integer(raw, 20, name, 1, 100),
  }),
  setting({
    key: "smtpStartTls",
    env: "MAILROOM_SMTP_STARTTLS",
    flag: "--smtp-starttls",
    description: "STARTTLS policy for smtp:// relays: opportunistic or required",
    defaultText: "opportunistic",
    parse: (raw, name) => oneOf(raw, "opportunistic", name, ["opportunistic", "required"]),
  }),
  setting({
    key: "smtpConnectTimeoutMs",
    env: "MAILROOM_SMTP_CONNECT_TIMEOUT_MS",
    flag: "--smtp-connect-timeout-ms",
    description: "give up connecting to the relay after this long",
    defaultText: "10000",
    parse: (raw, name) => integer(raw, 10_000, name, 100, 600_000),
  }),
  setting({
    key: "smtpSocketTimeoutMs",
    env: "MAILROOM_SMTP_SOCKET_TIMEOUT_MS",
    flag: "--smtp-socket-timeout-ms",
    description: "give up on a silent relay connection after this long",
    defaultText: "60000",
    parse: (raw, name) => integer(raw, 60_000, name, 100, 3_600_000),
  }),
  setting({
    key: "deliveryConcurrency",
    env: "MAILROOM_DELIVERY_CONCURRENCY",
    flag: "--delivery-concurrency",
    description: "messages in flight to the relay at once (sent over the pool's connections in turn)",
    defaultText: "300",
    parse: (raw, name) => integer(raw, 300, name, 1, 1000),
  }),
  setting({
    key: "deliveryMemoryBytes",
    env: "MAILROOM_DELIVERY_MEMORY",
    flag: "--delivery-memory",
    description:
      "bytes of message content (texts and attachments) being delivered at once; larger messages wait their turn",
    defaultText: "8388608 (8 MiB: a message of the default largest size is delivered alone)",
    parse: (raw, name) => integer(raw, 8 * 1024 * 1024, name, 1024, 16 * 1024 * 1024 * 1024),
  }),
  setting({
    key: "maxAttempts",
    env: "MAILROOM_MAX_ATTEMPTS",
    flag: "--max-attempts",
    description:
      "answered delivery attempts before a message fails; unset, only MAILROOM_MAX_AGE_MS ends retrying",
    defaultText: "(unset: no limit)",
    parse: (raw, name) => (raw === undefined ? null : integer(raw, 0, name, 1, 1000)),
  }),
  setting({
    key: "maxAgeMs",
    env: "MAILROOM_MAX_AGE_MS",
    flag: "--max-age-ms",
    description: "stop retrying a message this long after it was accepted",
    defaultText: "86400000 (1 day)",
    parse: (raw, name) => integer(raw, 86_400_000, name, 1000, 30 * 86_400_000),
  }),
  setting({
    key: "retryBaseMs",
    env: "MAILROOM_RETRY_BASE_MS",
    flag: "--retry-base-ms",
    description: "first retry delay; doubles each attempt, with jitter",
    defaultText: "30000",
    parse: (raw, name) => integer(raw, 30_000, name, 1, 86_400_000),
  }),
  setting({
    key: "retryMaxMs",
    env: "MAILROOM_RETRY_MAX_MS",
    flag: "--retry-max-ms",
    description: "longest delay between two attempts",
    defaultText: "3600000",
    parse: (raw, name) => integer(raw, 3_600_000, name, 1, 86_400_000),
  }),
  setting({
    key: "leaseMs",
    env: "MAILROOM_LEASE_MS",
    flag: "--lease-ms",
    description: "how long a claimed message is reserved before another worker may take it",
    defaultText: "120000",
    parse: (raw, name) => integer(raw, 120_000, name, 100, 3_600_000),
  }),
  setting({
    key: "heartbeatTimeoutMs",
    env: "MAILROOM_HEARTBEAT_TIMEOUT_MS",
    flag: "--heartbeat-timeout-ms",
    description:
      "PostgreSQL: a process silent this long is taken for dead and its deliveries taken over (it beats every third of it)",
    defaultText: "15000",
    parse: (raw, name) => integer(raw, 15_000, name, 300, 3_600_000),
  }),
  setting({
    key: "pollIntervalMs",
    env: "MAILROOM_POLL_INTERVAL_MS",
    flag: "--poll-interval-ms",
    description: "longest sleep of an idle worker between checks of the queue",
    defaultText: "5000",
    parse: (raw, name) => integer(raw, 5000, name, 10, 600_000),
  }),
  setting({
    key: "shutdownTimeoutMs",
    env: "MAILROOM_SHUTDOWN_TIMEOUT_MS",
    flag: "--shutdown-timeout-ms",
    description: "on SIGTERM, wait this long for in-flight deliveries",
    defaultText: "10000",
    parse: (raw, name) => integer(raw, 10_000, name, 0, 600_000),
  }),
  setting({
    key: "webhookAllowPrivate",
    env: "MAILROOM_WEBHOOK_ALLOW_PRIVATE",
    flag: "--webhook-allow-private",
    description:
      "1: webhook and StatusCallback URLs may reach loopback, private, link-local and metadata addresses (refused by default, at creation and at delivery)",
    defaultText: "0",
    parse: (raw, name) => onOff(raw, false, name),
  }),
  setting({
    key: "webhookRetryBaseMs",
    env: "MAILROOM_WEBHOOK_RETRY_BASE_MS",
    flag: "--webhook-retry-base-ms",
    description:
      "first webhook retry delay; the later ones are 60, 360, 1440, 3600, 7200 and 7200 times it (±20%), then the delivery is given up",
    defaultText: "5000 (retries over about 28 hours)",
    parse: (raw, name) => integer(raw, 5000, name, 1, 3_600_000),
  }),
  setting({
    key: "webhookTimeoutMs",
    env: "MAILROOM_WEBHOOK_TIMEOUT_MS",
    flag: "--webhook-timeout-ms",
    description: "a webhook or StatusCallback POST without a complete answer after this long has failed",
    defaultText: "10000",
    parse: (raw, name) => integer(raw, 10_000, name, 100, 600_000),
  }),
  setting({
    key: "webhookConcurrency",
    env: "MAILROOM_WEBHOOK_CONCURRENCY",
    flag: "--webhook-concurrency",
    description: "webhook and StatusCallback POSTs in flight at once per process; more wait in the queue",
    defaultText: "64",
    parse: (raw, name) => integer(raw, 64, name, 1, 10_000),
  }),
  setting({
    key: "webhookHostConcurrency",
    env: "MAILROOM_WEBHOOK_HOST_CONCURRENCY",
    flag: "--webhook-host-concurrency",
    description: "webhook and StatusCallback connections per destination host at once, per process",
    defaultText: "8",
    parse: (raw, name) => integer(raw, 8, name, 1, 10_000),
  }),
  setting({
    key: "webhookDisableAfterMs",
    env: "MAILROOM_WEBHOOK_DISABLE_AFTER_MS",
    flag: "--webhook-disable-after-ms",
    description:
      "a webhook failing without a success for longer than this is disabled (with a Notification) and its queued deliveries dropped",
    defaultText: "259200000 (3 days)",
    parse: (raw, name) => integer(raw, 259_200_000, name, 100, 365 * 86_400_000),
  }),
  setting({
    key: "webhookPollIntervalMs",
    env: "MAILROOM_WEBHOOK_POLL_INTERVAL_MS",
    flag: "--webhook-poll-interval-ms",
    description:
      "longest sleep of an idle webhook sender between checks of its queue (events of this process wake it at once)",
    defaultText: "1000",
    parse: (raw, name) => integer(raw, 1000, name, 10, 600_000),
  }),
  setting({
    key: "maxDomains",
    env: "MAILROOM_MAX_DOMAINS",
    flag: "--max-domains",
    description: "most sending domains one account may have",
    defaultText: "20",
    parse: (raw, name) => integer(raw, 20, name, 0, 100_000),
  }),
  setting({
    key: "requireVerifiedDomain",
    env: "MAILROOM_REQUIRE_VERIFIED_DOMAIN",
    flag: "--require-verified-domain",
    description:
      "1: a message is accepted only from a verified sending domain of the account (or a subdomain of one), else 400 (16010); 0: from any address",
    defaultText: "(unset: 1 when MAILROOM_DELIVERY_MODE is mx, 0 for relay and capture)",
    parse: (raw, name) => (raw === undefined ? undefined : onOff(raw, false, name)),
  }),
  setting({
    key: "spfMechanisms",
    env: "MAILROOM_SPF_INCLUDE",
    flag: "--spf-include",
    description:
      "the SPF mechanisms each domain's SPF record is told to have, for the addresses mail leaves from: space- or comma-separated include:, ip4:, ip6:, a, a:, mx, mx: terms (e.g. your relay's include:)",
    defaultText: "(unset: a:{MAILROOM_HOSTNAME})",
    parse: (raw, name) => spfMechanisms(raw, name),
  }),
  setting({
    key: "domainCheckIntervalMs",
    env: "MAILROOM_DOMAIN_CHECK_INTERVAL_MS",
    flag: "--domain-check-interval-ms",
    description:
      "how often each sending domain's DNS records are looked up again (a verified domain that lost its DKIM record becomes failed, with a Notification)",
    defaultText: "21600000 (6 hours)",
    parse: (raw, name) => integer(raw, 21_600_000, name, 1000, 30 * 86_400_000),
  }),
  setting({
    key: "mxPort",
    env: "MAILROOM_MX_PORT",
    flag: "--mx-port",
    description: "mx mode: the TCP port of MX hosts (25 on the Internet; tests only change it)",
    defaultText: "25",
    parse: (raw, name) => integer(raw, 25, name, 1, 65535),
  }),
  setting({
    key: "hostname",
    env: "MAILROOM_HOSTNAME",
    flag: "--hostname",
    description:
      "mx mode: the name Mailroom gives in EHLO; receivers check it, so give the fully qualified name whose A record is this machine",
    defaultText: "(the machine's host name; a warning at start when it has no dot)",
    parse: (raw, name) => hostname(raw, name),
  }),
  setting({
    key: "mxPoolSize",
    env: "MAILROOM_MX_POOL_SIZE",
    flag: "--mx-pool-size",
    description: "mx mode: SMTP connections at most per MX host, reused across messages",
    defaultText: "10",
    parse: (raw, name) => integer(raw, 10, name, 1, 100),
  }),
  setting({
    key: "tlsRequiredDomains",
    env: "MAILROOM_TLS_REQUIRED_DOMAINS",
    flag: "--tls-required-domains",
    description:
      "mx mode: comma-separated recipient domains whose MX must offer STARTTLS with a certificate valid for its name; otherwise mail waits (deferred), never sent in clear",
    defaultText: "(unset: opportunistic STARTTLS everywhere)",
    parse: (raw, name) => domainList(raw, name),
  }),
  setting({
    key: "mxCa",
    env: "MAILROOM_MX_CA_FILE",
    flag: "--mx-ca-file",
    description:
      "mx mode: PEM file of CAs trusted for MX certificates (TLS-required domains) in addition to the system's",
    defaultText: "(unset: the system's CAs)",
    parse: (raw, name) => caFile(raw, name),
  }),
  setting({
    key: "domainRates",
    env: "MAILROOM_DOMAIN_RATES",
    flag: "--domain-rates",
    description:
      "mx mode: most messages per second, minute, hour or day to a recipient domain, comma-separated (gmail.com=600/h,example.com=10/m); more wait in the queue, never fail for it",
    defaultText: "(unset: no limit)",
    parse: (raw, name) => domainRates(raw, name),
  }),
  setting({
    key: "domainBackoffMs",
    env: "MAILROOM_DOMAIN_BACKOFF_MS",
    flag: "--domain-backoff-ms",
    description:
      "mx mode: how long a whole domain waits after a 421 or 451 4.7.x reply; doubles while it keeps saying so (at most 1 hour)",
    defaultText: "60000",
    parse: (raw, name) => integer(raw, 60_000, name, 1, 3_600_000),
  }),
  setting({
    key: "mtaStsPort",
    env: "MAILROOM_MTA_STS_PORT",
    flag: "--mta-sts-port",
    description:
      "mx mode: the HTTPS port of mta-sts.{domain}, where MTA-STS policies are fetched (443 on the Internet; tests only change it)",
    defaultText: "443",
    parse: (raw, name) => integer(raw, 443, name, 1, 65535),
  }),
  setting({
    key: "mxAllowPrivate",
    env: "MAILROOM_MX_ALLOW_PRIVATE",
    flag: "--mx-allow-private",
    description:
      "mx mode, 1: MX hosts and MTA-STS policy hosts may be loopback, private, link-local or metadata addresses (refused by default: a recipient domain must not reach into this network)",
    defaultText: "0",
    parse: (raw, name) => onOff(raw, false, name),
  }),
  setting({
    key: "dnsMinTtlMs",
    env: "MAILROOM_DNS_MIN_TTL_MS",
    flag: "--dns-min-ttl-ms",
    description:
      "mx mode: the least time an MX, address or negative DNS answer is kept, whatever its TTL (answers are kept for their TTL, at most 1 hour; a 0 TTL would mean a lookup per message)",
    defaultText: String(DEFAULT_MIN_TTL_MS),
    parse: (raw, name) => integer(raw, DEFAULT_MIN_TTL_MS, name, 0, MAX_TTL_MS),
  }),
  setting({
    key: "domainConnections",
    env: "MAILROOM_DOMAIN_CONNECTIONS",
    flag: "--domain-connections",
    description:
      "mx mode: most connections (transactions) at once to a recipient domain across its MX hosts, comma-separated (example.com=2); more wait their turn",
    defaultText: "(unset: only MAILROOM_MX_POOL_SIZE per MX host)",
    parse: (raw, name) =>
      raw === undefined
        ? []
        : raw.split(",").map((item) => {
            try {
              return parseDomainLimit(item);
            } catch (error) {
              throw new ConfigError(`${name}: ${(error as Error).message}`);
            }
          }),
  }),
  setting({
    key: "contentRetentionMs",
    env: "MAILROOM_CONTENT_RETENTION",
    flag: "--content-retention",
    description:
      "how long a final message keeps its content (bodies, MIME, attachments, custom headers), e.g. 30d, 12h, 90s; accounts may shorten it (docs/operations.md)",
    defaultText: "30d",
    parse: (raw, name) => duration(raw, "30d", name),
  }),
  setting({
    key: "metadataRetentionMs",
    env: "MAILROOM_METADATA_RETENTION",
    flag: "--metadata-retention",
    description:
      "how long a final message is kept at all (addresses, subject, status, attempts, events); at least MAILROOM_CONTENT_RETENTION",
    defaultText: "400d",
    parse: (raw, name) => duration(raw, "400d", name),
  }),
  setting({
    key: "purgeIntervalMs",
    env: "MAILROOM_PURGE_INTERVAL",
    flag: "--purge-interval",
    description: "how often the background purge looks for messages past their retention",
    defaultText: "1h",
    parse: (raw, name) => duration(raw, "1h", name),
  }),
  setting({
    key: "domainWarmup",
    env: "MAILROOM_DOMAIN_WARMUP",
    flag: "--domain-warmup",
    description:
      "mx mode: warm-up schedules, semicolon-separated: an allowance per day (hour, minute) per recipient domain, or * for every other domain, growing from a start date (gmail.com=50/d..10000/d over 30d from 2026-12-01; *=20,50,100/h from 2026-12-01T08:00Z); more wait in the queue for a place in a later step, never fail for it",
    defaultText: "(unset: no warm-up)",
    parse: (raw, name) => domainWarmup(raw, name),
  }),
] as const;

/** Whether MAILROOM_REQUIRE_VERIFIED_DOMAIN is in force: as set, else only for direct-to-MX delivery. */
export function requireVerifiedDomain(
  config: Pick<Config, "requireVerifiedDomain" | "deliveryMode">,
): boolean {
  return config.requireVerifiedDomain ?? config.deliveryMode === "mx";
}

const SPF_TERM =
  /^(include:[a-z0-9._-]+|ip4:[0-9./]+|ip6:[0-9a-f:./]+|a|mx|a:[a-z0-9._-]+|mx:[a-z0-9._-]+)$/i;

function spfMechanisms(raw: string | undefined, name: string): string[] | undefined {
  if (raw === undefined) return undefined;
  const terms = raw.split(/[\s,]+/).filter((term) => term !== "");
  const bad = terms.find((term) => !SPF_TERM.test(term));
  if (terms.length === 0 || bad !== undefined) {
    throw new ConfigError(
      `${name} must be SPF mechanisms (include:host, ip4:addr[/n], ip6:addr[/n], a, a:host, mx, mx:host), got "${bad ?? raw}"`,
    );
  }
  return terms;
}

/**
 * Builds the configuration from the environment, with `overrides` (CLI flags, keyed by setting)
 * taking precedence. Throws ConfigError naming the setting on the first bad value.
 */
export function loadConfig(
  env: NodeJS.ProcessEnv,
  overrides: Partial<Record<keyof Config, string>> = {},
): Config {
  const config: Partial<Record<keyof Config, unknown>> = {};
  for (const s of SETTINGS) {
    const fromFlag = overrides[s.key];
    const raw = fromFlag ?? env[s.env];
    const name = fromFlag === undefined ? s.env : s.flag;
    config[s.key] = s.parse(raw === "" ? undefined : raw, name);
  }
  if ((config.deliveryMode as string) === "") {
    config.deliveryMode = config.smtpUrl === undefined ? "capture" : "relay";
  } else if (config.deliveryMode === "relay" && config.smtpUrl === undefined) {
    throw new ConfigError(
      "MAILROOM_DELIVERY_MODE=relay needs MAILROOM_SMTP_URL (the relay to deliver through)",
    );
  }
  if ((config.metadataRetentionMs as number) < (config.contentRetentionMs as number)) {
    throw new ConfigError(
      "MAILROOM_METADATA_RETENTION must be at least MAILROOM_CONTENT_RETENTION: a message's row outlives its content",
    );
  }
  // Room for the largest message's attachments in base64 (4/3 of the bytes) and its other fields.
  if (config.bodyLimitBytes === 0) {
    config.bodyLimitBytes = Math.ceil(((config.maxMessageBytes as number) * 4) / 3) + 1024 * 1024;
  }
  return config as Config;
}

function extensionList(raw: string | undefined, name: string): readonly string[] {
  if (raw === undefined) return DEFAULT_BLOCKED;
  if (raw.trim().toLowerCase() === "none") return [];
  const list = raw.split(",").map((item) => item.trim().toLowerCase().replace(/^\./, ""));
  const bad = list.find((item) => !/^[a-z0-9]{1,16}$/.test(item));
  if (bad !== undefined) {
    throw new ConfigError(`${name} must be comma-separated file extensions (or none), got "${bad}"`);
  }
  return list;
}

const PROXY_NAMES = ["loopback", "linklocal", "uniquelocal"];

function proxyList(raw: string | undefined, name: string): string[] | false {
  if (raw === undefined) return false;
  const list = raw.split(",").map((item) => item.trim());
  for (const item of list) {
    const [address = "", prefix, extra] = item.split("/");
    const family = isIP(address);
    const prefixOk =
      prefix === undefined ||
      (/^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 6 ? 128 : 32) && extra === undefined);
    if (!PROXY_NAMES.includes(item) && (family === 0 || !prefixOk)) {
      throw new ConfigError(
        `${name} must be comma-separated IP addresses or CIDR blocks (or ${PROXY_NAMES.join(", ")}), got "${item}"`,
      );
    }
  }
  return list;
}

/** A token Prometheus sends as `Authorization: Bearer …`: what a header carries unchanged, long enough not to guess. */
function dnsServerList(raw: string | undefined, name: string): DnsServer[] | undefined {
  if (raw === undefined) return undefined;
  return raw.split(",").map((item) => {
    const server = parseDnsServer(item);
    if (!server) {
      throw new ConfigError(`${name} must be comma-separated host[:port] IP addresses, got "${item.trim()}"`);
    }
    return server;
  });
}

function bearerToken(raw: string | undefined, name: string): string | undefined {
  if (raw === undefined) return undefined;
  // The value itself is never quoted back: a message naming it would put the secret in a log.
  if (!/^[\x21-\x7e]+$/.test(raw))
    throw new ConfigError(`${name} must be visible ASCII characters only (no spaces or control characters)`);
  if (raw.length < 16 || raw.length > 1024)
    throw new ConfigError(
      `${name} must be 16 to 1024 characters long (got ${raw.length}); for example: openssl rand -hex 32`,
    );
  return raw;
}

function relayUrl(raw: string | undefined, name: string): string | undefined {
  const url = optionalUrl(raw, name, ["smtp:", "smtps:"]);
  if (url === undefined) return undefined;
  try {
    readRelayUrlOptions(new URL(url));
  } catch (error) {
    throw new ConfigError(`${name}: ${(error as Error).message}`);
  }
  return url;
}

function caFile(raw: string | undefined, name: string): string | undefined {
  if (raw === undefined) return undefined;
  let text: string;
  try {
    text = readFileSync(raw, "utf8");
  } catch (error) {
    throw new ConfigError(
      `${name}: cannot read ${raw} (${(error as NodeJS.ErrnoException).code ?? "error"})`,
    );
  }
  if (!text.includes("-----BEGIN CERTIFICATE-----")) {
    throw new ConfigError(`${name}: ${raw} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  }
  return text;
}

/** An EHLO name: a domain name (letters, digits, dots, hyphens) or an address literal. */
function hostname(raw: string | undefined, name: string): string {
  if (raw === undefined) return machineName();
  const value = raw.trim();
  if (
    !/^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?$|^\[[0-9A-Fa-f:.]+\]$/.test(
      value,
    )
  ) {
    throw new ConfigError(`${name} must be a host name such as mail.example.com, got "${raw}"`);
  }
  return value;
}

/** The machine's host name, as EHLO gives it: a name without spaces, or an address literal. */
function machineName(): string {
  let name = "";
  try {
    name = osHostname();
  } catch {
    // No host name to be had.
  }
  name = name.replace(/[^A-Za-z0-9.-]+/g, "");
  if (name === "") return "localhost";
  return isIP(name) === 4 ? `[${name}]` : name;
}

function domainList(raw: string | undefined, name: string): readonly string[] {
  if (raw === undefined) return [];
  return raw.split(",").map((item) => {
    const domain = item.trim().toLowerCase().replace(/\.$/, "");
    if (!/^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$/.test(domain)) {
      throw new ConfigError(`${name} must be comma-separated domain names, got "${item.trim()}"`);
    }
    return domain;
  });
}

function domainRates(raw: string | undefined, name: string): DomainRate[] {
  if (raw === undefined) return [];
  return raw.split(",").map((item) => {
    try {
      return parseDomainRate(item);
    } catch (error) {
      throw new ConfigError(`${name}: ${(error as Error).message}`);
    }
  });
}

function domainWarmup(raw: string | undefined, name: string): WarmupSchedule[] {
  if (raw === undefined) return [];
  const schedules = raw
    .split(";")
    .filter((item) => item.trim() !== "")
    .map((item) => {
      try {
        return parseWarmup(item);
      } catch (error) {
        throw new ConfigError(`${name}: ${(error as Error).message} (schedules are separated by ";")`);
      }
    });
  const seen = new Set<string>();
  for (const { domain } of schedules) {
    if (seen.has(domain)) throw new ConfigError(`${name}: ${domain} has two schedules; keep one`);
    seen.add(domain);
  }
  return schedules;
}

function secretKey(raw: string | undefined, name: string): string | undefined {
  if (raw === undefined) return undefined;
  try {
    parseSecretKey(raw);
  } catch (error) {
    // The message names the accepted forms; the value itself is never repeated.
    throw new ConfigError(`${name} ${(error as Error).message}`);
  }
  return raw.trim();
}

function onOff(raw: string | undefined, fallback: boolean, name: string): boolean {
  if (raw === undefined) return fallback;
  const value = raw.trim().toLowerCase();
  if (value === "1" || value === "true") return true;
  if (value === "0" || value === "false") return false;
  throw new ConfigError(`${name} must be 1 or 0 (true or false), got "${raw}"`);
}

function duration(raw: string | undefined, fallback: string, name: string): number {
  const ms = parseDuration(raw ?? fallback);
  if (ms === undefined) throw new ConfigError(`${name} must be ${DURATION_FORMS}, got "${raw}"`);
  return ms;
}

function nonEmpty(raw: string | undefined, fallback: string): string {
  return raw ?? fallback;
}

function integer(raw: string | undefined, fallback: number, name: string, min: number, max: number): number {
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw.trim())) throw new ConfigError(`${name} must be a whole number, got "${raw}"`);
  const value = Number(raw);
  if (value < min || value > max)
    throw new ConfigError(`${name} must be between ${min} and ${max}, got ${value}`);
  return value;
}

function oneOf<T extends string>(
  raw: string | undefined,
  fallback: T,
  name: string,
  allowed: readonly string[],
): T {
  if (raw === undefined) return fallback;
  if (!allowed.includes(raw))
    throw new ConfigError(`${name} must be one of ${allowed.join(", ")}, got "${raw}"`);
  return raw as T;
}

function optionalUrl(
  raw: string | undefined,
  name: string,
  protocols: readonly string[],
): string | undefined {
  if (raw === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(`${name} is not a valid URL`);
  }
  if (!protocols.includes(url.protocol)) {
    throw new ConfigError(`${name} must start with ${protocols.map((p) => `${p}//`).join(" or ")}`);
  }
  return raw;
}
