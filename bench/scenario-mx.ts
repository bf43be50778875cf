/**
 * The direct-to-MX row (issue 15): Mailroom with MAILROOM_DELIVERY_MODE=mx, each message to one
 * recipient at one of BENCH_MX_DOMAINS domains in turn, each domain's MX one of BENCH_MX_HOSTS host
 * names on 127.0.0.2 onwards, where the bench's sink also listens. A real DNS server in this process
 * (the tests' dns2 server, test/helpers/dns-server.ts) answers the MX, A and (absent) MTA-STS lookups.
 */
import { startTestDns, type TestDns } from "../test/helpers/dns-server.js";
import type { BenchConfig } from "./config.js";
import { apiRequest, bodyText, ENVELOPE } from "./message.js";
import type { RowSetup } from "./scenario-mailroom.js";
import type { Sink } from "./sink.js";

/** The MX host addresses of the row: 127.0.0.2, 127.0.0.3, … (the sink listens on each). */
export function mxHostAddresses(config: BenchConfig): string[] {
  return Array.from({ length: config.mxHosts }, (_, i) => `127.0.0.${i + 2}`);
}

const domainOf = (i: number) => `d${i}.bench-mx.example`;

export async function prepareMx(config: BenchConfig, sink: Sink): Promise<RowSetup> {
  const dns: TestDns = await startTestDns();
  const addresses = mxHostAddresses(config);
  addresses.forEach((address, i) => {
    dns.set(`mx${i}.bench-mx.example`, [{ type: "A", address, ttl: 3600 }]);
  });
  for (let i = 0; i < config.mxDomains; i++) {
    dns.set(domainOf(i), [
      { type: "MX", exchange: `mx${i % addresses.length}.bench-mx.example`, priority: 10, ttl: 3600 },
    ]);
  }
  return {
    settings: {
      MAILROOM_DELIVERY_MODE: "mx",
      MAILROOM_DNS_SERVERS: dns.servers,
      MAILROOM_MX_PORT: String(sink.port),
      MAILROOM_HOSTNAME: "bench.mailroom.example",
      MAILROOM_MX_ALLOW_PRIVATE: "1",
      // The bench sends from an address of no verified domain (issue 15's sending policy, on by default in mx).
      MAILROOM_REQUIRE_VERIFIED_DOMAIN: "0",
    },
    request: (credentials) => {
      // The same form body as the plain row, but To goes round the domains (one message to each in turn).
      const fixed = new URLSearchParams({
        From: ENVELOPE.From,
        Subject: ENVELOPE.Subject,
        Body: bodyText(config.messageBytes),
      }).toString();
      let next = 0;
      const body = () => {
        const to = `recipient${next}@${domainOf(next % config.mxDomains)}`;
        next++;
        return Buffer.from(`${fixed}&To=${encodeURIComponent(to)}`);
      };
      return apiRequest(credentials, "application/x-www-form-urlencoded", body);
    },
    close: () => dns.close(),
  };
}
