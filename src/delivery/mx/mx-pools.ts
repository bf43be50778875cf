import { rootCertificates } from "node:tls";
import { SmtpPool, type SmtpPoolOptions } from "../transports/smtp-pool.js";
import type { TransportConnections } from "../transports/transport.js";
import type { MxSettings } from "./mx-settings.js";

/** How a connection to an MX host treats TLS. */
export type MxTlsPolicy = "opportunistic" | "verified";

/** How often pools without connections are dropped (their connections closed themselves when idle). */
const SWEEP_MS = 60_000;

/**
 * One SmtpPool per MX host address and TLS policy, made on first use and reused by every message to
 * that host (whichever domain it serves: many domains share their provider's MX hosts). A pool whose
 * connections have all closed (idle connections say QUIT after MAILROOM_SMTP_SOCKET_TIMEOUT_MS) is
 * dropped at the next sweep, so a thousand domains seen once leave nothing behind.
 */
export class MxPools {
  private readonly pools = new Map<string, SmtpPool>();
  private readonly sweeper: NodeJS.Timeout;
  /** Connections opened by pools already dropped (for /metrics' total). */
  private openedBefore = 0;
  private readonly verifiedCa: string[] | undefined;
  private closed = false;

  constructor(private readonly settings: MxSettings) {
    this.sweeper = setInterval(() => this.sweep(), SWEEP_MS);
    this.sweeper.unref();
    // Node's `ca` replaces the system's CAs: the extra file is added to them, not put in their place.
    this.verifiedCa = settings.ca === undefined ? undefined : [...rootCertificates, settings.ca];
  }

  /**
   * The pool for `host` (the MX name, which a verified certificate must match) at `address`.
   * Opportunistic: STARTTLS when offered, any certificate (as MTAs do: a self-signed certificate
   * still beats clear text). Verified: STARTTLS required, certificate checked against `host`.
   */
  get(host: string, address: string, tls: MxTlsPolicy): SmtpPool {
    const key = `${tls} ${host} ${address}`;
    let pool = this.pools.get(key);
    if (pool === undefined && this.closed) {
      // Stopping: no new connections; sends fail as "Connection pool was closed", as a closed relay's do.
      pool = new SmtpPool(this.poolOptions(host, address, tls), () => {});
      void pool.close();
      return pool;
    }
    if (pool === undefined) {
      // Remote hosts fail all the time; each failure is in its message's attempt, not the log.
      pool = new SmtpPool(this.poolOptions(host, address, tls), () => {});
      this.pools.set(key, pool);
    }
    return pool;
  }

  private poolOptions(host: string, address: string, tls: MxTlsPolicy): SmtpPoolOptions {
    const { settings } = this;
    return {
      host: address,
      port: settings.port,
      secure: false,
      startTls: tls === "verified" ? "required" : "opportunistic",
      auth: undefined,
      allowInsecureAuth: false,
      tls:
        tls === "verified"
          ? {
              servername: host,
              rejectUnauthorized: true,
              ...(this.verifiedCa ? { ca: this.verifiedCa } : {}),
            }
          : { servername: host, rejectUnauthorized: false },
      name: settings.hostname,
      connectTimeoutMs: settings.connectTimeoutMs,
      socketTimeoutMs: settings.socketTimeoutMs,
      poolSize: settings.poolSize,
    };
  }

  counts(): TransportConnections {
    let open = 0;
    let opened = this.openedBefore;
    for (const pool of this.pools.values()) {
      const counts = pool.counts();
      open += counts.open;
      opened += counts.opened;
    }
    return { open, opened };
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweeper);
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((pool) => pool.close()));
  }

  private sweep(): void {
    for (const [key, pool] of this.pools) {
      const counts = pool.counts();
      if (counts.open > 0 || pool.waiting > 0) continue;
      this.openedBefore += counts.opened;
      this.pools.delete(key);
      void pool.close();
    }
  }
}
