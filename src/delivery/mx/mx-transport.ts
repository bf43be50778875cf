import { DnsClient } from "../../dns/dns-client.js";
import { MxLookup } from "../../dns/mx.js";
import { createResolver } from "../../dns/resolver.js";
import type {
  OutgoingMessage,
  RecipientOutcome,
  SendFailure,
  SendReport,
  Transport,
  TransportConnections,
} from "../transports/transport.js";
import { DomainDelivery, type DomainJob } from "./deliver-domain.js";
import { DomainConnections, DomainGate } from "./domain-gate.js";
import { MtaSts } from "./mta-sts.js";
import { MxPools } from "./mx-pools.js";
import { describeMx, type MxSettings } from "./mx-settings.js";

/**
 * Direct-to-MX delivery (MAILROOM_DELIVERY_MODE=mx): the envelope's recipients grouped by domain,
 * one SMTP transaction per domain, all domains at once, every one with the same bytes (the message
 * is composed once). The reports are merged back into one, recipient by recipient, so a message can
 * be sent to two domains and deferred for a third: only the deferred recipients are tried again.
 */
export class MxTransport implements Transport {
  readonly description: string;
  private readonly pools: MxPools;
  private readonly domains: DomainDelivery;

  constructor(settings: MxSettings) {
    this.description = describeMx(settings);
    this.pools = new MxPools(settings);
    const resolver = createResolver(settings.dnsServers);
    const lookup = new MxLookup(new DnsClient(settings.dnsServers), resolver, {
      minTtlMs: settings.dnsMinTtlMs,
    });
    const sts = new MtaSts(resolver, {
      port: settings.mtaStsPort,
      ca: settings.ca,
      timeoutMs: settings.connectTimeoutMs,
      allowPrivate: settings.allowPrivate,
    });
    const required = new Set(settings.tlsRequiredDomains);
    const gate = new DomainGate(settings.rates, settings.backoffMs, Date.now, settings.warmups);
    this.domains = new DomainDelivery(
      lookup,
      this.pools,
      (domain) => required.has(domain),
      gate,
      sts,
      settings.allowPrivate,
      new DomainConnections(settings.domainConnections),
    );
  }

  async send(message: OutgoingMessage): Promise<SendReport> {
    const jobs = byDomain(message);
    const reports = await Promise.all(jobs.map((job) => this.domains.deliver(job)));
    return reports.length === 1 ? (reports[0] as SendReport) : merged(message.envelope.to, reports);
  }

  connections(): TransportConnections {
    return this.pools.counts();
  }

  close(): Promise<void> {
    return this.pools.close();
  }
}

/** The recipients grouped by their domain (lower case), in the envelope's order. */
function byDomain({ envelope, raw, key }: OutgoingMessage): DomainJob[] {
  const jobs = new Map<string, DomainJob>();
  for (const address of envelope.to) {
    const domain = address
      .slice(address.lastIndexOf("@") + 1)
      .toLowerCase()
      .replace(/\.$/, "");
    const job = jobs.get(domain);
    if (job) job.to.push(address);
    // Without a SID (a test's own dispatch), the first recipient stands for the message.
    else jobs.set(domain, { domain, from: envelope.from, to: [address], raw, key: key ?? address });
  }
  return [...jobs.values()];
}

/**
 * One report for the message: each recipient's own outcome in envelope order; the concluding reply
 * and the failure of the first domain that did not take everything (all such failures in words).
 */
function merged(to: readonly string[], reports: readonly SendReport[]): SendReport {
  const outcomes = new Map<string, RecipientOutcome>();
  for (const report of reports) {
    for (const recipient of report.recipients) outcomes.set(recipient.address, recipient);
  }
  const recipients = to.map((address) => outcomes.get(address) as RecipientOutcome);
  // The failure of a domain still waiting explains the retry better than one refused for good.
  const waits = (report: SendReport) => report.recipients.some((r) => r.state === "deferred");
  const failing = reports
    .filter((report) => report.failure !== null)
    .sort((a, b) => Number(waits(b)) - Number(waits(a)));
  const first =
    failing[0] ?? reports.find((r) => r.recipients.some((x) => x.state !== "accepted")) ?? reports[0];
  let failure: SendFailure | null = null;
  if (failing.length > 0) {
    const head = failing[0]?.failure as SendFailure;
    failure = { code: head.code, message: failing.map((r) => r.failure?.message).join(" ") };
  }
  // A retry at the end of a wait only when every domain with deferred recipients is waiting; then the
  // earliest, so each domain's mail leaves when its own wait ends (its rate slot stays kept).
  const deferring = reports.filter(waits);
  const waitUntil = deferring.every((r) => r.waitUntil !== undefined)
    ? Math.min(...deferring.map((r) => r.waitUntil as number))
    : undefined;
  const report: SendReport = {
    recipients,
    smtpCode: first?.smtpCode ?? null,
    response: first?.response ?? null,
    failure,
  };
  if (waitUntil !== undefined && deferring.length > 0) report.waitUntil = waitUntil;
  return report;
}
