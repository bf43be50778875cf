/**
 * A DNS client that keeps what Node's resolver drops: the TTL of every record and the authority
 * section (the SOA a negative answer carries, RFC 2308). MX lookups need both to be cached for as
 * long as DNS says (issue 15); node:dns's resolveMx gives neither.
 *
 * Queries go over UDP through dns2's client (random ID, a fresh socket and port per query, replies
 * from anyone but the server dropped); a truncated answer is asked again over TCP here, because
 * dns2's TCP client has no timeout and cannot reach an IPv6 server. Servers are asked in order as
 * c-ares does: the next on a timeout or a failure code, every server once per try, the timeout
 * doubled on each try after the first.
 */

import { randomInt } from "node:crypto";
import { getServers } from "node:dns";
import { connect, isIP } from "node:net";
import dns2 from "dns2";
import { type DnsServer, parseDnsServer } from "./resolver.js";

const { Packet, UDPClient } = dns2;

export type DnsPacket = dns2.Packet;
export type DnsResource = dns2.Packet.Resource;
export type QueryType = "MX" | "A" | "AAAA" | "TXT";

/** Record type numbers (RFC 1035 3.2.2), as `Resource.type` holds them. */
export const TYPE = Packet.TYPE;

export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;

/** Node's names for failure codes, so a message reads the same whichever client failed. */
const RCODE_ERRORS: Record<number, string> = {
  [RCODE.FORMERR]: "EFORMERR",
  [RCODE.SERVFAIL]: "ESERVFAIL",
  [RCODE.NOTIMP]: "ENOTIMP",
  [RCODE.REFUSED]: "EREFUSED",
};

/** No server gave an answer (NOERROR or NXDOMAIN); `code` as Node's resolver names it. */
export class DnsQueryError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface DnsClientOptions {
  /** The first try's timeout per server in ms (doubled on each later try, as c-ares does). */
  timeoutMs?: number;
  /** Rounds over every server. */
  tries?: number;
}

/** The system's servers (resolv.conf, as Node read it), in its order; c-ares's 127.0.0.1 when none. */
export function systemDnsServers(): DnsServer[] {
  const servers = getServers().flatMap((text) => parseDnsServer(text) ?? []);
  return servers.length > 0 ? servers : [{ address: "127.0.0.1", port: 53 }];
}

export class DnsClient {
  private readonly servers: readonly DnsServer[];
  private readonly timeoutMs: number;
  private readonly tries: number;

  /** `servers`: MAILROOM_DNS_SERVERS; undefined or empty: the system's. */
  constructor(servers: readonly DnsServer[] | undefined, options: DnsClientOptions = {}) {
    this.servers = servers && servers.length > 0 ? servers : systemDnsServers();
    this.timeoutMs = options.timeoutMs ?? 2000;
    this.tries = options.tries ?? 2;
  }

  /**
   * The first NOERROR or NXDOMAIN response (check `header.rcode`) of the servers in order. Throws
   * DnsQueryError when none gave one: SERVFAIL, REFUSED, silence, no route.
   */
  async query(name: string, type: QueryType): Promise<DnsPacket> {
    let failure: DnsQueryError | undefined;
    for (let round = 0; round < this.tries; round++) {
      const timeoutMs = this.timeoutMs * 2 ** round;
      for (const server of this.servers) {
        try {
          const response = await this.ask(server, name, type, timeoutMs);
          const rcode = response.header.rcode;
          if (rcode === RCODE.NOERROR || rcode === RCODE.NXDOMAIN) return response;
          const code = RCODE_ERRORS[rcode] ?? "EBADRESP";
          failure = new DnsQueryError(code, `${where(server)} answered ${code} for ${type} ${name}`);
        } catch (error) {
          const code = (error as { code?: string }).code ?? "EBADRESP";
          failure = new DnsQueryError(code, `${where(server)}: ${(error as Error).message}`);
        }
      }
    }
    throw failure ?? new DnsQueryError("ECONNREFUSED", "no DNS server to ask");
  }

  private async ask(server: DnsServer, name: string, type: QueryType, timeoutMs: number): Promise<DnsPacket> {
    const udp = UDPClient({
      dns: server.address,
      port: server.port,
      socketType: isIP(server.address) === 6 ? "udp6" : "udp4",
      timeout: timeoutMs,
      retryOverTCP: false,
    });
    let response: DnsPacket;
    try {
      response = await udp(name, type);
    } catch (error) {
      // dns2 names a timeout ETIMEDOUT; Node's resolver (and so every message) says ETIMEOUT.
      if ((error as { code?: string }).code === "ETIMEDOUT") throw withCode(error as Error, "ETIMEOUT");
      throw error;
    }
    // The answer did not fit in a datagram (RFC 1035 4.2.1): the whole of it comes over TCP.
    if (response.header.tc) response = await queryTcp(server, name, type, timeoutMs);
    checkQuestion(response, name, type);
    return response;
  }
}

/** One query over TCP (RFC 1035 4.2.2: a two-byte length, then the message), bounded by `timeoutMs`. */
async function queryTcp(
  server: DnsServer,
  name: string,
  type: QueryType,
  timeoutMs: number,
): Promise<DnsPacket> {
  const query = new Packet();
  query.header.id = randomInt(0x10000);
  query.header.rd = 1;
  query.questions.push({ name, type: Packet.TYPE[type], class: Packet.CLASS.IN } as dns2.Packet.Question);
  const message = query.toBuffer();
  const length = Buffer.alloc(2);
  length.writeUInt16BE(message.length);
  const socket = connect({ host: server.address, port: server.port });
  const timer = setTimeout(
    () =>
      socket.destroy(withCode(new Error(`DNS query over TCP timed out after ${timeoutMs}ms`), "ETIMEOUT")),
    timeoutMs,
  );
  try {
    socket.write(Buffer.concat([length, message]));
    const data = await Packet.readStream(socket);
    const response = Packet.parse(data);
    if (response.header.id !== query.header.id)
      throw withCode(new Error("a reply to another query over TCP"), "EBADRESP");
    return response;
  } finally {
    clearTimeout(timer);
    socket.destroy();
  }
}

/** A reply must be about the question asked (dns2 matches the ID only). */
function checkQuestion(response: DnsPacket, name: string, type: QueryType): void {
  const [question] = response.questions;
  const same =
    question !== undefined &&
    question.type === Packet.TYPE[type] &&
    question.name.toLowerCase().replace(/\.$/, "") === name.toLowerCase().replace(/\.$/, "");
  if (!same) throw withCode(new Error(`a reply that is not about ${type} ${name}`), "EBADRESP");
}

function withCode(error: Error, code: string): Error {
  return Object.assign(error, { code });
}

function where({ address, port }: DnsServer): string {
  return isIP(address) === 6 ? `[${address}]:${port}` : `${address}:${port}`;
}
