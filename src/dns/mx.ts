/**
 * Where mail for a domain goes, per RFC 5321 section 5.1: its MX hosts by preference (random among
 * equal ones), the domain itself when it has no MX (the "implicit MX"), nowhere when its MX is the
 * null MX "." (RFC 7505) or the domain does not exist. DNS failures that may pass (SERVFAIL, a
 * timeout) throw a DnsTemporaryError: the caller defers, it does not fail the mail.
 *
 * Answers are cached for their TTL within one set of bounds (ttl-cache.ts): MX answers through
 * dns-client.ts, which gives the records' TTLs and a negative answer's SOA (node:dns gives neither);
 * addresses through Node's resolver (resolve4/resolve6 with `ttl: true`).
 */
import type { Resolver } from "node:dns/promises";
import { type DnsClient, type DnsPacket, RCODE, TYPE } from "./dns-client.js";
import { isNoRecord } from "./resolver.js";
import { TtlCache } from "./ttl-cache.js";

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

/**
 * How long a negative answer is kept when it gives no TTL: one without an SOA (with one, RFC 2308
 * section 5 says how long), and a host without addresses (Node's resolver does not show the SOA).
 */
export const NEGATIVE_TTL_MS = 300_000;

export interface MxLookupOptions {
  clock?: () => number;
  random?: () => number;
  /** The least time an answer is kept, whatever its TTL (MAILROOM_DNS_MIN_TTL_MS; ttl-cache.ts). */
  minTtlMs?: number;
}

export class MxLookup {
  private readonly routes: TtlCache<MxRoute>;
  private readonly addressCache: TtlCache<string[]>;
  /** Lookups under way: messages to one domain arriving together share one query. */
  private readonly pending = new Map<string, Promise<unknown>>();
  private readonly random: () => number;

  /** `client` asks for MX records (with their TTLs), `resolver` for the hosts' addresses. */
  constructor(
    private readonly client: DnsClient,
    private readonly resolver: Resolver,
    options: MxLookupOptions = {},
  ) {
    const clock = options.clock ?? Date.now;
    this.routes = new TtlCache(clock, options.minTtlMs);
    this.addressCache = new TtlCache(clock, options.minTtlMs);
    this.random = options.random ?? Math.random;
  }

  /** Where mail for `domain` goes; the hosts come in the order to try them. */
  async route(domain: string): Promise<MxRoute> {
    const key = domain.toLowerCase();
    const cached = this.routes.get(key);
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
    return this.addressCache.get(key) ?? this.shared(`a ${key}`, () => this.lookupAddresses(key));
  }

  private async lookupRoute(domain: string): Promise<MxRoute> {
    let response: DnsPacket;
    try {
      response = await this.client.query(domain, "MX");
    } catch (error) {
      throw new DnsTemporaryError(domain, "MX", (error as { code?: string }).code ?? "ERROR");
    }
    const records = response.answers.filter((r) => r.type === TYPE.MX);
    let route: MxRoute;
    let ttlMs: number;
    if (response.header.rcode === RCODE.NXDOMAIN) {
      route = { kind: "no-domain" };
      ttlMs = negativeTtlMs(response);
    } else if (records.length === 0) {
      // The domain exists without MX: its own address is the implicit MX (RFC 5321 5.1).
      route = { kind: "hosts", hosts: [{ name: domain, preference: 0 }], implicit: true };
      ttlMs = negativeTtlMs(response);
    } else {
      const hosts = records
        .map((r) => ({
          name: (r.exchange ?? "").toLowerCase().replace(/\.$/, ""),
          preference: r.priority ?? 0,
        }))
        .filter((h) => h.name !== "");
      // "." alone is the null MX; an RRset of nothing but unusable names is treated as one too.
      route = hosts.length > 0 ? { kind: "hosts", hosts, implicit: false } : { kind: "null-mx" };
      // The MX RRset's TTL, and that of any CNAME on the way to it: the answer lasts as long as all of them.
      const chain = response.answers.filter((r) => r.type === TYPE.MX || r.type === TYPE.CNAME);
      ttlMs = Math.min(...chain.map((r) => r.ttl * 1000));
    }
    this.routes.set(domain, route, ttlMs);
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
    const ttl = records.length > 0 ? Math.min(...records.map((r) => r.ttl * 1000)) : NEGATIVE_TTL_MS;
    // Only a complete answer is kept: a family that failed for now is asked again next time.
    if (answered.length === 2) this.addressCache.set(host, addresses, ttl);
    return addresses;
  }

  /** Sorted by preference; hosts of equal preference shuffled, so load spreads as RFC 5321 asks. */
  private ordered(hosts: readonly MxHost[]): MxHost[] {
    const shuffled = hosts.map((host) => ({ host, tie: this.random() }));
    shuffled.sort((a, b) => a.host.preference - b.host.preference || a.tie - b.tie);
    return shuffled.map((entry) => entry.host);
  }

  private shared<T>(key: string, lookup: () => Promise<T>): Promise<T> {
    const running = this.pending.get(key);
    if (running) return running as Promise<T>;
    const promise = lookup().finally(() => this.pending.delete(key));
    this.pending.set(key, promise);
    return promise;
  }
}

/**
 * A negative answer's TTL (RFC 2308 section 5): the lesser of its SOA record's TTL and the SOA's
 * MINIMUM field; NEGATIVE_TTL_MS when the server sent no SOA.
 */
function negativeTtlMs(response: DnsPacket): number {
  const soa = response.authorities.find((r) => r.type === TYPE.SOA);
  if (soa === undefined) return NEGATIVE_TTL_MS;
  return Math.min(soa.ttl, soa.minimum ?? soa.ttl) * 1000;
}
