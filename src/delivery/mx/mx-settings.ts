import type { Config } from "../../config/config.js";
import type { DnsServer } from "../../dns/resolver.js";
import type { DomainRate } from "./domain-gate.js";
import type { WarmupSchedule } from "./warmup.js";

/** What direct-to-MX delivery needs, as it crosses to the delivery thread (plain data). */
export interface MxSettings {
  /** MAILROOM_DNS_SERVERS; undefined: the system's. */
  dnsServers: DnsServer[] | undefined;
  /** MAILROOM_MX_PORT. */
  port: number;
  /** MAILROOM_HOSTNAME: the EHLO name. */
  hostname: string;
  /** MAILROOM_MX_POOL_SIZE: connections per MX host. */
  poolSize: number;
  /** MAILROOM_TLS_REQUIRED_DOMAINS, lower case. */
  tlsRequiredDomains: readonly string[];
  /** MAILROOM_MX_CA_FILE's PEM text. */
  ca: string | undefined;
  connectTimeoutMs: number;
  socketTimeoutMs: number;
  /** MAILROOM_DOMAIN_RATES. */
  rates: DomainRate[];
  /** MAILROOM_DOMAIN_BACKOFF_MS. */
  backoffMs: number;
  /** MAILROOM_MTA_STS_PORT: where `mta-sts.{domain}` serves HTTPS (443; tests change it). */
  mtaStsPort: number;
  /** MAILROOM_MX_ALLOW_PRIVATE. */
  allowPrivate: boolean;
  /** MAILROOM_DNS_MIN_TTL_MS: the floor under DNS answers' TTLs. */
  dnsMinTtlMs: number;
  /** MAILROOM_DOMAIN_CONNECTIONS: transactions at once per domain, where limited. */
  domainConnections: Array<{ domain: string; connections: number }>;
  /** MAILROOM_DOMAIN_WARMUP: warm-up schedules per recipient domain (or `*`). */
  warmups: WarmupSchedule[];
}

export function mxSettingsOf(config: Config): MxSettings {
  return {
    dnsServers: config.dnsServers,
    port: config.mxPort,
    hostname: config.hostname,
    poolSize: config.mxPoolSize,
    tlsRequiredDomains: config.tlsRequiredDomains,
    ca: config.mxCa,
    connectTimeoutMs: config.smtpConnectTimeoutMs,
    socketTimeoutMs: config.smtpSocketTimeoutMs,
    rates: config.domainRates,
    backoffMs: config.domainBackoffMs,
    mtaStsPort: config.mtaStsPort,
    allowPrivate: config.mxAllowPrivate,
    dnsMinTtlMs: config.dnsMinTtlMs,
    domainConnections: config.domainConnections,
    warmups: config.domainWarmup,
  };
}

/** One sentence for the start-up log. */
export function describeMx(settings: MxSettings): string {
  const tls =
    settings.tlsRequiredDomains.length > 0
      ? `TLS required for ${settings.tlsRequiredDomains.length} domain(s), opportunistic elsewhere`
      : "opportunistic STARTTLS";
  const warmup = settings.warmups.length > 0 ? `, ${settings.warmups.length} warm-up schedule(s)` : "";
  return `delivering mail to each recipient domain's MX hosts on port ${settings.port} as ${settings.hostname} (${tls}, up to ${settings.poolSize} connections per host${warmup})`;
}
