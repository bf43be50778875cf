import type { MxLookup } from "../../dns/mx.js";
import { DeliveryErrorCodes } from "../../domain/errors.js";
import { refusedAddressReason } from "../../webhooks/address-guard.js";
import { reportSent } from "../transports/smtp.js";
import type { SmtpError } from "../transports/smtp-connection.js";
import type { SendReport } from "../transports/transport.js";
import { type DomainConnections, type DomainGate, meansSlowDown } from "./domain-gate.js";
import {
  dnsDeferred,
  listOf,
  noHostTook,
  refused,
  setupProblem,
  transactionFailed,
  waiting,
  withDestination,
} from "./domain-reports.js";
import { type MtaSts, mxMatches } from "./mta-sts.js";
import type { MxPools, MxTlsPolicy } from "./mx-pools.js";

/** The recipients of one message that live at one domain: one SMTP transaction. */
export interface DomainJob {
  domain: string;
  from: string;
  to: string[];
  raw: string;
  /** The message's SID, for the domain's rate (domain-gate.ts). */
  key: string;
}

/** Addresses tried per attempt at most, across the domain's MX hosts (Postfix: smtp_mx_address_limit). */
const MAX_TRIES = 5;
/** How long an address that did not answer is tried after the others, and how many are remembered. */
const DOWN_MS = 60_000;
const MAX_DOWN = 10_000;

/**
 * Delivers to one recipient domain: its MX hosts in order (mx.ts), each address of a host in turn,
 * moving on when a connection cannot be set up (refused, timed out, a 4xx or 5xx greeting, a failed
 * STARTTLS a TLS-required domain needs). Once a host has taken the transaction its answer is the
 * domain's answer: a refusal is not tried elsewhere.
 */
export class DomainDelivery {
  constructor(
    private readonly lookup: MxLookup,
    private readonly pools: MxPools,
    private readonly tlsRequired: (domain: string) => boolean,
    private readonly gate: DomainGate,
    private readonly sts: MtaSts,
    private readonly allowPrivate: boolean,
    private readonly connections: DomainConnections,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Addresses that did not answer lately (refused, timed out), until when they are tried last. */
  private readonly down = new Map<string, number>();

  private isDown(address: string): boolean {
    const until = this.down.get(address);
    if (until === undefined) return false;
    if (until > this.clock()) return true;
    this.down.delete(address);
    return false;
  }

  private markDown(address: string): void {
    this.down.delete(address);
    if (this.down.size >= MAX_DOWN) this.down.delete(this.down.keys().next().value as string);
    this.down.set(address, this.clock() + DOWN_MS);
  }

  /**
   * The domain's answer, after its pacing: a domain over its rate or backing off is not contacted,
   * its recipients wait (deferred, `waitUntil`). A "slow down" reply backs the whole domain off.
   */
  async deliver(job: DomainJob): Promise<SendReport> {
    const admission = this.gate.admit(job.domain, job.key);
    if (!admission.go) {
      const allowance = admission.why === "warmup" ? admission.allowance : undefined;
      return waiting(job, admission.until, admission.why, allowance);
    }
    const entered = this.connections.enter(job.domain);
    const leave = entered instanceof Promise ? await entered : entered;
    let report: SendReport;
    try {
      report = await this.attempt(job);
    } finally {
      leave();
    }
    if (report.recipients.some((r) => r.state === "accepted")) this.gate.tookOne(job.domain);
    else if (
      report.recipients.some((r) => r.state === "deferred") &&
      meansSlowDown(report.smtpCode, report.response)
    ) {
      report.waitUntil = this.gate.slowDown(job.domain);
    }
    return report;
  }

  private async attempt(job: DomainJob): Promise<SendReport> {
    const { domain, to } = job;
    let route: Awaited<ReturnType<MxLookup["route"]>>;
    // The MTA-STS policy is looked up alongside (it never throws: no policy is the fallback).
    const policyLookup = this.sts.policyFor(domain);
    try {
      route = await this.lookup.route(domain);
    } catch (error) {
      return dnsDeferred(job, error);
    }
    if (route.kind === "no-domain") {
      return refused(to, {
        code: DeliveryErrorCodes.MxDomainNotFound,
        message: `The domain ${domain} does not exist (DNS answered NXDOMAIN); check ${listOf(to)}.`,
      });
    }
    if (route.kind === "null-mx") {
      return refused(to, {
        code: DeliveryErrorCodes.MxNullMx,
        message: `The domain ${domain} accepts no mail: it publishes a null MX (RFC 7505); check ${listOf(to)}.`,
      });
    }
    const policy = await policyLookup;
    const enforced = policy?.mode === "enforce";
    const listed = this.tlsRequired(domain);
    const tls: MxTlsPolicy = listed || enforced ? "verified" : "opportunistic";
    const failures: string[] = [];
    let lastSetupError: SmtpError | undefined;
    let tlsFailed = false;
    let addressesSeen = 0;
    let tries = 0;
    const later: Array<{ host: string; address: string }> = [];
    /** The domain's answer from `host` at `address`, or undefined when no session could be set up there. */
    const tryAt = async (host: string, address: string): Promise<SendReport | undefined> => {
      try {
        const result = await this.pools.get(host, address, tls).send({ from: job.from, to }, job.raw);
        this.down.delete(address);
        return withDestination(reportSent(to, result.response, result.rejected), host);
      } catch (error) {
        const failure = error as SmtpError;
        if (!failure.setup) return withDestination(transactionFailed(to, failure, host), host);
        lastSetupError = failure;
        if (failure.code === "ETLS") tlsFailed = true;
        if (failure.responseCode === undefined) this.markDown(address);
        failures.push(`${host} [${address}]: ${setupProblem(failure)}`);
        return undefined;
      }
    };
    for (const host of route.hosts) {
      if (enforced && !mxMatches(policy, host.name)) {
        failures.push(`${host.name}: not among the MTA-STS policy's mx hosts`);
        tlsFailed = true;
        continue;
      }
      let addresses: string[];
      try {
        addresses = await this.lookup.addresses(host.name);
      } catch (error) {
        if (route.implicit) return dnsDeferred(job, error);
        failures.push(`${host.name}: ${(error as Error).message}`);
        continue;
      }
      addressesSeen += addresses.length;
      if (addresses.length === 0) failures.push(`${host.name}: no address (A/AAAA)`);
      for (const address of addresses) {
        // A recipient domain chooses its MX: it must not point Mailroom into this machine's network.
        const refused = this.allowPrivate ? null : refusedAddressReason(address);
        if (refused !== null) {
          failures.push(
            `${host.name} [${address}]: a ${refused} address (MAILROOM_MX_ALLOW_PRIVATE=1 allows it)`,
          );
        } else if (this.isDown(address)) later.push({ host: host.name, address });
        else if (tries++ < MAX_TRIES) {
          const report = await tryAt(host.name, address);
          if (report) return report;
        }
      }
    }
    // Hosts that failed to answer lately come last: a dead primary must not cost every message a timeout.
    for (const { host, address } of later) {
      if (tries++ >= MAX_TRIES) break;
      const report = await tryAt(host, address);
      if (report) return report;
    }
    if (route.implicit && addressesSeen === 0 && lastSetupError === undefined && failures.length > 0) {
      return refused(to, {
        code: DeliveryErrorCodes.MxNoAddress,
        message: `The domain ${domain} has no MX record and no address (A/AAAA): it cannot receive mail; check ${listOf(to)}.`,
      });
    }
    const requiredBy = tls === "verified" && tlsFailed ? (listed ? "setting" : "mta-sts") : undefined;
    return noHostTook(job, failures, lastSetupError, requiredBy);
  }
}
