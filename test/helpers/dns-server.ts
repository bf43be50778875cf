/**
 * A real DNS server for tests (dns2), over UDP and TCP on one port of 127.0.0.1, answering from a zone
 * the test edits as it goes: MX, A, AAAA and TXT records, SERVFAIL or silence for a name, an SOA in
 * negative answers when asked (negativeSoa). Answers too big for 512 bytes of UDP come back truncated
 * (TC), as from a real server, and whole over TCP. Point Mailroom at it with
 * MAILROOM_DNS_SERVERS=dns.servers, and a verifier at dns.resolver().
 */
import { Resolver } from "node:dns/promises";
import type { AddressInfo } from "node:net";
import dns2 from "dns2";

const { Packet } = dns2;

export type DnsRecord =
  | { type: "A"; address: string; ttl?: number }
  | { type: "AAAA"; address: string; ttl?: number }
  | { type: "MX"; exchange: string; priority: number; ttl?: number }
  | { type: "TXT"; data: string; ttl?: number };

/** How a name fails instead of answering from the zone. */
export type DnsFailure = "SERVFAIL" | "REFUSED" | "TIMEOUT";

export interface TestDns {
  /** `127.0.0.1:PORT`, for MAILROOM_DNS_SERVERS. */
  servers: string;
  port: number;
  /** Replaces the records of `name` (all types). */
  set(name: string, records: DnsRecord[]): void;
  /** Adds one record to `name`. */
  add(name: string, record: DnsRecord): void;
  /** Removes `name` from the zone (it then answers NXDOMAIN). */
  remove(name: string): void;
  /** `name` fails this way until cleared with fail(name, undefined). */
  fail(name: string, failure: DnsFailure | undefined): void;
  /**
   * Negative answers (NXDOMAIN, no record of the type) carry an SOA with this TTL and MINIMUM in
   * their authority section (RFC 2308), until cleared with negativeSoa(undefined); none by default.
   */
  negativeSoa(soa: { ttl: number; minimum: number } | undefined): void;
  /** Every question asked, in order ("name TYPE", lower case). */
  queries: string[];
  /** A Node resolver that asks this server only (for a test's own lookups and verifiers). */
  resolver(): Resolver;
  close(): Promise<void>;
}

const TYPE_NAMES: Record<number, DnsRecord["type"] | undefined> = {
  [Packet.TYPE.A]: "A",
  [Packet.TYPE.AAAA]: "AAAA",
  [Packet.TYPE.MX]: "MX",
  [Packet.TYPE.TXT]: "TXT",
};

const RCODE = { NOERROR: 0, SERVFAIL: 2, NXDOMAIN: 3, REFUSED: 5 } as const;

function key(name: string): string {
  return name.toLowerCase().replace(/\.$/, "");
}

/** TXT data goes on the wire as strings of at most 255 bytes (a DKIM key is longer). */
function txtChunks(text: string): Buffer[] {
  const bytes = Buffer.from(text, "utf8");
  const chunks: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += 255) chunks.push(bytes.subarray(at, at + 255));
  return chunks.length > 0 ? chunks : [Buffer.alloc(0)];
}

function answerOf(name: string, record: DnsRecord): dns2.Packet.Resource {
  const base = { name, class: Packet.CLASS.IN, ttl: record.ttl ?? 300 };
  switch (record.type) {
    case "A":
      return { ...base, type: Packet.TYPE.A, address: record.address } as dns2.Packet.Resource;
    case "AAAA":
      return { ...base, type: Packet.TYPE.AAAA, address: record.address } as dns2.Packet.Resource;
    case "MX":
      return {
        ...base,
        type: Packet.TYPE.MX,
        exchange: record.exchange,
        priority: record.priority,
      } as dns2.Packet.Resource;
    case "TXT":
      return {
        ...base,
        type: Packet.TYPE.TXT,
        data: txtChunks(record.data) as unknown as string[],
      } as dns2.Packet.Resource;
  }
}

interface ServerOptions {
  negativeSoa: { ttl: number; minimum: number } | undefined;
}

/** The SOA a negative answer carries, for the zone of `name` (its parent, good enough for tests). */
function soaOf(name: string, { ttl, minimum }: { ttl: number; minimum: number }): dns2.Packet.Resource {
  const zone = name.includes(".") ? name.slice(name.indexOf(".") + 1) : name;
  return {
    name: zone,
    type: Packet.TYPE.SOA,
    class: Packet.CLASS.IN,
    ttl,
    primary: `ns.${zone}`,
    admin: `hostmaster.${zone}`,
    serial: 1,
    refresh: 3600,
    retry: 600,
    expiration: 86400,
    minimum,
  } as dns2.Packet.Resource;
}

/** Starts the server on a free port of 127.0.0.1 (UDP and TCP on the same number, as resolvers expect). */
export async function startTestDns(): Promise<TestDns> {
  const zone = new Map<string, DnsRecord[]>();
  const failures = new Map<string, DnsFailure>();
  const queries: string[] = [];
  const options: ServerOptions = { negativeSoa: undefined };

  const handle: dns2.DnsHandler = (request, send) => {
    const response = Packet.createResponseFromRequest(request);
    const [question] = request.questions;
    if (!question) return void send(response);
    const name = key(question.name);
    const typeName = TYPE_NAMES[question.type];
    queries.push(`${name} ${typeName ?? question.type}`);
    const failure = failures.get(name);
    if (failure === "TIMEOUT") return;
    if (failure) {
      response.header.rcode = RCODE[failure];
      return void send(response);
    }
    const records = zone.get(name);
    if (!records) response.header.rcode = RCODE.NXDOMAIN;
    for (const record of records ?? []) {
      if (record.type === typeName) response.answers.push(answerOf(question.name, record));
    }
    if (response.answers.length === 0 && options.negativeSoa) {
      response.authorities.push(soaOf(name, options.negativeSoa));
    }
    send(response);
  };

  // UDP first on a free port, then TCP on the same number (resolvers retry a truncated answer over TCP
  // at the same port); another process may hold that TCP port, so try again with another.
  for (let tries = 0; ; tries++) {
    const udp = dns2.createUDPServer(handle);
    await udp.listen(0, "127.0.0.1");
    const port = (udp.address() as AddressInfo).port;
    const tcp = dns2.createTCPServer(handle);
    try {
      await new Promise<void>((resolve, reject) => {
        tcp.once("error", reject);
        tcp.listen(port, "127.0.0.1", () => {
          tcp.off("error", reject);
          resolve();
        });
      });
    } catch (error) {
      udp.close();
      if (tries >= 10) throw error;
      continue;
    }
    const close = async () => {
      await Promise.all([
        new Promise<void>((resolve) => udp.close(() => resolve())),
        new Promise<void>((resolve) => tcp.close(() => resolve())),
      ]);
    };
    return makeHandle(port, zone, failures, queries, options, close);
  }
}

function makeHandle(
  port: number,
  zone: Map<string, DnsRecord[]>,
  failures: Map<string, DnsFailure>,
  queries: string[],
  options: ServerOptions,
  close: () => Promise<void>,
): TestDns {
  const servers = `127.0.0.1:${port}`;
  return {
    servers,
    port,
    queries,
    set(name, records) {
      zone.set(key(name), [...records]);
    },
    add(name, record) {
      const list = zone.get(key(name)) ?? [];
      list.push(record);
      zone.set(key(name), list);
    },
    remove(name) {
      zone.delete(key(name));
    },
    fail(name, failure) {
      if (failure) failures.set(key(name), failure);
      else failures.delete(key(name));
    },
    negativeSoa(soa) {
      options.negativeSoa = soa;
    },
    resolver() {
      const resolver = new Resolver({ timeout: 1000, tries: 1 });
      resolver.setServers([servers]);
      return resolver;
    },
    close,
  };
}
