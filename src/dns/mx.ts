/**
 * Where mail for a domain goes, per RFC 5321 section 5.1: its MX hosts by preference (random among
 * equal ones), the domain itself when it has no MX (the "implicit MX"), nowhere when its MX is the
 * null MX "." (RFC 7505) or the domain does not exist. DNS failures that may pass (SERVFAIL, a
 * timeout) throw a DnsTemporaryError: the caller defers, it does not fail the mail.
 *
 * Answers are cached in a bounded map. Node's resolveMx does not give the record's TTL (resolveAny
 * would, but many servers refuse ANY queries, RFC 8482), so MX answers are kept for MX_CACHE_MS;
 * addresses (resolve4/resolve6 with `ttl: true`) for their own TTL, within the same bounds.
 */
import type { Resolver } from "node:dns/promises";
import { isNoRecord } from "./resolver.js";

export interface MxHost {
  /** The host name (lower case, no trailing dot). */
  name: string;
  preference: number;
}

export type MxRoute =
  /** Hosts to try in order. `implicit`: the domain has no MX and its own address stands in. */
  | { kind: "hosts"; hosts: readonly MxHost[]; implicit: boolean }
  /** RFC 7505: the domain says it accepts no mail. */
  | { kind: "null-mx" }
  /** NXDOMAIN: no such domain. */
  | { kind: "no-domain" };

/** A lookup failed in a way that may pass (SERVFAIL, REFUSED, a timeout): try again later. */
export class DnsTemporaryError extends Error {
  constructor(
    readonly host: string,
    readonly type: string,
    readonly code: string,
  ) {
    super(`the DNS lookup of ${type} ${host} failed for now (${code})`);
  }
}

/** How long an MX answer (which carries no TTL in Node) and a negative answer are kept. */
export const MX_CACHE_MS = 300_000;
/** Address TTLs are honoured within these bounds (a 0 TTL would mean a lookup per message). */
const MIN_TTL_MS = 5_000;
const MAX_TTL_MS = 3_600_000;
/** The most names kept; the oldest entry goes first when full. */
const MAX_ENTRIES = 10_000;

interface Entry<T> {
  value: T;
  expires: number;
}

export interface MxLookupOptions {
  clock?: () => number;
  random?: () => number;
}

export class MxLookup {
  private readonly routes = new Map<string, Entry<MxRoute>>();
  private readonly addressCache = new Map<string, Entry<string[]>>();
  /** Lookups under way: messages to one domain arriving together share one query. */
  private readonly pending = new Map<string, Promise<unknown>>();
  private readonly clock: () => number;
  private readonly random: () => number;

  constructor(
    private readonly resolver: Resolver,
    options: MxLookupOptions = {},
  ) {
    this.clock = options.clock ?? Date.now;
    this.random = options.random ?? Math.random;
  }

  /** Where mail for `domain` goes; the hosts come in the order to try them. */
  async route(domain: string): Promise<MxRoute> {
    const key = domain.toLowerCase();
    const cached = this.fresh(this.routes, key);
    const route = cached ?? (await this.shared(`mx ${key}`, () => this.lookupRoute(key)));
    // One host (the usual case) needs no shuffle: the cached answer itself is returned (read-only).
    return route.kind === "hosts" && route.hosts.length > 1
      ? { ...route, hosts: this.ordered(route.hosts) }
      : route;
  }

  /**
   * The addresses of an MX host, IPv4 first; [] when it has none. Throws DnsTemporaryError when
   * neither lookup answered.
   */
  async addresses(host: string): Promise<string[]> {
    const key = host.toLowerCase();
    return this.fresh(this.addressCache, key) ?? this.shared(`a ${key}`, () => this.lookupAddresses(key));
  }

  private async lookupRoute(domain: string): Promise<MxRoute> {
    let route: MxRoute;
    try {
      const records = await this.resolver.resolveMx(domain);
      if (records.length === 1 && records[0]?.exchange.replace(/\.$/, "") === "") route = { kind: "null-mx" };
      else {
        const hosts = records
          .map((r) => ({ name: r.exchange.toLowerCase().replace(/\.$/, ""), preference: r.priority }))
          .filter((h) => h.name !== "");
        route = hosts.length > 0 ? { kind: "hosts", hosts, implicit: false } : { kind: "null-mx" };
      }
    } catch (error) {
      const code = (error as { code?: string }).code ?? "ERROR";
      if (code === "ENOTFOUND") route = { kind: "no-domain" };
      else if (isNoRecord(error)) {
        // The domain exists without MX: its own address is the implicit MX (RFC 5321 5.1).
        route = { kind: "hosts", hosts: [{ name: domain, preference: 0 }], implicit: true };
      } else throw new DnsTemporaryError(domain, "MX", code);
    }
    this.store(this.routes, domain, route, MX_CACHE_MS);
    return route;
  }

  private async lookupAddresses(host: string): Promise<string[]> {
    const [v4, v6] = await Promise.allSettled([
      this.resolver.resolve4(host, { ttl: true }),
      this.resolver.resolve6(host, { ttl: true }),
    ]);
    const answered = [v4, v6].filter((r) => r.status === "fulfilled" || isNoRecord(r.reason));
    if (answered.length === 0) {
      const reason = (v4 as PromiseRejectedResult).reason as { code?: string };
      throw new DnsTemporaryError(host, "A", reason.code ?? "ERROR");
    }
    const records = [v4, v6].flatMap((r) => (r.status === "fulfilled" ? r.value : []));
    const addresses = records.map((r) => r.address);
    const ttl = records.length > 0 ? Math.min(...records.map((r) => r.ttl * 1000)) : MX_CACHE_MS;
    // Only a complete answer is kept: a family that failed for now is asked again next time.
    if (answered.length === 2) this.store(this.addressCache, host, addresses, ttl);
    return addresses;
  }

  /** Sorted by preference; hosts of equal preference shuffled, so load spreads as RFC 5321 asks. */
  private ordered(hosts: readonly MxHost[]): MxHost[] {
    const shuffled = hosts.map((host) => ({ host, tie: this.random() }));
    shuffled.sort((a, b) => a.host.preference - b.host.preference || a.tie - b.tie);
    return shuffled.map((entry) => entry.host);
  }

  private fresh<T>(cache: Map<string, Entry<T>>, key: string): T | undefined {
    const entry = cache.get(key);
    if (entry === undefined) return undefined;
    if (entry.expires > this.clock()) return entry.value;
    cache.delete(key);
    return undefined;
  }

  private store<T>(cache: Map<string, Entry<T>>, key: string, value: T, ttlMs: number): void {
    const bounded = Math.min(Math.max(ttlMs, MIN_TTL_MS), MAX_TTL_MS);
    cache.delete(key);
    if (cache.size >= MAX_ENTRIES) cache.delete(cache.keys().next().value as string);
    cache.set(key, { value, expires: this.clock() + bounded });
  }

  private shared<T>(key: string, lookup: () => Promise<T>): Promise<T> {
    const running = this.pending.get(key);
    if (running) return running as Promise<T>;
    const promise = lookup().finally(() => this.pending.delete(key));
    this.pending.set(key, promise);
    return promise;
  }
}
