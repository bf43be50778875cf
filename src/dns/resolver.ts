/**
 * The DNS resolver Mailroom asks (domain verification, MX lookups): the system's, or the servers of
 * MAILROOM_DNS_SERVERS. One place, so every lookup honours the setting.
 */
import { Resolver } from "node:dns/promises";
import { isIP } from "node:net";

/** A DNS server as MAILROOM_DNS_SERVERS gives it: `host` or `host:port` (IPv6 as `[addr]:port`). */
export interface DnsServer {
  address: string;
  port: number;
}

/** Reads `host[:port]`; undefined when it is not an IP address with an optional port. */
export function parseDnsServer(text: string): DnsServer | undefined {
  const trimmed = text.trim();
  const bracketed = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(trimmed);
  const [address, port] = bracketed
    ? [bracketed[1] ?? "", bracketed[2]]
    : isIP(trimmed) === 6
      ? [trimmed, undefined]
      : (trimmed.split(":") as [string, string | undefined]);
  const portNumber = port === undefined ? 53 : Number(port);
  if (isIP(address) === 0 || !Number.isInteger(portNumber) || portNumber < 1 || portNumber > 65535) {
    return undefined;
  }
  return { address, port: portNumber };
}

/** The form Resolver.setServers takes. */
function serverText({ address, port }: DnsServer): string {
  return isIP(address) === 6 ? `[${address}]:${port}` : `${address}:${port}`;
}

export interface ResolverOptions {
  /** Per-try timeout in ms (c-ares doubles it on each retry). */
  timeoutMs?: number;
  tries?: number;
}

/** A resolver over `servers`, or over the system's servers when none are given. */
export function createResolver(
  servers: readonly DnsServer[] | undefined,
  options: ResolverOptions = {},
): Resolver {
  const resolver = new Resolver({ timeout: options.timeoutMs ?? 2000, tries: options.tries ?? 2 });
  if (servers && servers.length > 0) resolver.setServers(servers.map(serverText));
  return resolver;
}

/**
 * DNS error codes that mean "no such record" (a permanent answer), as opposed to a server that
 * failed or did not answer (temporary: try again later).
 */
const NO_RECORD_CODES = new Set(["ENOTFOUND", "ENODATA", "ENONAME", "NXDOMAIN"]);

/** True when a lookup error means the name or record does not exist (not a temporary failure). */
export function isNoRecord(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && NO_RECORD_CODES.has(code);
}
