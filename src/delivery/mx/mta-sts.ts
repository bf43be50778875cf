/**
 * MTA-STS (RFC 8461): a domain that publishes `_mta-sts.{domain}` TXT `v=STSv1; id=…` serves its policy
 * at `https://mta-sts.{domain}/.well-known/mta-sts.txt`. With `mode: enforce` its mail goes only over
 * verified TLS, and only to MX hosts that match the policy's `mx` patterns.
 *
 * Policies are cached for their `max_age` (and while the TXT record's id stays the same); the TXT
 * record for 5 minutes. A domain without the record has no policy. A failure to fetch a policy (no
 * answer, a bad certificate, a bad file) keeps a cached one in force and otherwise means no policy,
 * as the RFC says (section 5): MTA-STS guards against downgrades of domains seen before.
 */
import type { Resolver } from "node:dns/promises";
import { request } from "node:https";
import { rootCertificates } from "node:tls";
import { isNoRecord } from "../../dns/resolver.js";
import { refusedAddressReason } from "../../webhooks/address-guard.js";

export interface StsPolicy {
  mode: "enforce" | "testing" | "none";
  /** Patterns such as `mx1.example.com` or `*.example.com` (one label), lower case. */
  mx: string[];
  maxAgeMs: number;
}

export interface MtaStsOptions {
  /** The HTTPS port of `mta-sts.{domain}`: 443 (MAILROOM_MTA_STS_PORT, for tests). */
  port: number;
  /** PEM CAs trusted besides the system's (MAILROOM_MX_CA_FILE). */
  ca: string | undefined;
  timeoutMs: number;
  /** MAILROOM_MX_ALLOW_PRIVATE: the policy host may be a loopback, private, … address. */
  allowPrivate: boolean;
  clock?: () => number;
}

const TXT_CACHE_MS = 300_000;
/** RFC 8461 3.2: a policy file is at most 64 KB. */
const MAX_POLICY_BYTES = 64 * 1024;
/** RFC 8461 3.2: max_age at most 31557600 s (a year). */
const MAX_AGE_S = 31_557_600;
const MAX_ENTRIES = 10_000;

interface CachedPolicy {
  id: string;
  policy: StsPolicy;
  expires: number;
}

export class MtaSts {
  private readonly txt = new Map<string, { id: string | undefined; expires: number }>();
  private readonly policies = new Map<string, CachedPolicy>();
  private readonly pending = new Map<string, Promise<StsPolicy | undefined>>();
  private readonly ca: string[] | undefined;
  private readonly clock: () => number;

  constructor(
    private readonly resolver: Resolver,
    private readonly options: MtaStsOptions,
  ) {
    this.ca = options.ca === undefined ? undefined : [...rootCertificates, options.ca];
    this.clock = options.clock ?? Date.now;
  }

  /** The domain's policy in force, or undefined when it has none. Never throws. */
  policyFor(domain: string): Promise<StsPolicy | undefined> {
    const running = this.pending.get(domain);
    if (running) return running;
    const promise = this.lookup(domain).finally(() => this.pending.delete(domain));
    this.pending.set(domain, promise);
    return promise;
  }

  private async lookup(domain: string): Promise<StsPolicy | undefined> {
    const now = this.clock();
    const cached = this.policies.get(domain);
    const id = await this.recordId(domain, now);
    if (cached && cached.expires > now && (id === undefined || id === cached.id)) return cached.policy;
    if (id === undefined) return cached && cached.expires > now ? cached.policy : undefined;
    try {
      const policy = parsePolicy(await this.fetch(domain));
      if (policy === undefined) return cached && cached.expires > now ? cached.policy : undefined;
      if (this.policies.size >= MAX_ENTRIES)
        this.policies.delete(this.policies.keys().next().value as string);
      this.policies.set(domain, { id, policy, expires: now + policy.maxAgeMs });
      return policy;
    } catch {
      return cached && cached.expires > now ? cached.policy : undefined;
    }
  }

  /** The TXT record's id; undefined when there is none (or it could not be read now). */
  private async recordId(domain: string, now: number): Promise<string | undefined> {
    const cached = this.txt.get(domain);
    if (cached && cached.expires > now) return cached.id;
    let id: string | undefined;
    try {
      const records = await this.resolver.resolveTxt(`_mta-sts.${domain}`);
      const sts = records.map((chunks) => chunks.join("")).filter((text) => /^v=STSv1\s*(;|$)/.test(text));
      // RFC 8461 3.1: more than one record is no record.
      if (sts.length === 1) id = /(?:^|;)\s*id=([A-Za-z0-9]{1,32})\s*(?:;|$)/.exec(sts[0] as string)?.[1];
    } catch (error) {
      // A temporary failure is not cached: a cached policy stays in force meanwhile.
      if (!isNoRecord(error)) return this.policies.get(domain)?.id;
    }
    if (this.txt.size >= MAX_ENTRIES) this.txt.delete(this.txt.keys().next().value as string);
    this.txt.set(domain, { id, expires: now + TXT_CACHE_MS });
    return id;
  }

  /** GET the policy file over verified HTTPS, its host resolved with Mailroom's resolver. */
  private async fetch(domain: string): Promise<string> {
    const host = `mta-sts.${domain}`;
    const [address] = await this.resolver.resolve4(host);
    if (address === undefined) throw new Error(`${host} has no address`);
    const refused = this.options.allowPrivate ? null : refusedAddressReason(address);
    if (refused !== null) throw new Error(`${host} is at a ${refused} address`);
    return new Promise<string>((resolve, reject) => {
      const req = request(
        {
          host: address,
          port: this.options.port,
          path: "/.well-known/mta-sts.txt",
          method: "GET",
          servername: host,
          headers: { host },
          rejectUnauthorized: true,
          ...(this.ca ? { ca: this.ca } : {}),
          timeout: this.options.timeoutMs,
        },
        (response) => {
          // RFC 8461 3.3: no redirects; only a 200 is a policy.
          if (response.statusCode !== 200) {
            response.resume();
            reject(new Error(`HTTP ${response.statusCode}`));
            return;
          }
          const chunks: Buffer[] = [];
          let size = 0;
          response.on("data", (chunk: Buffer) => {
            size += chunk.length;
            if (size > MAX_POLICY_BYTES) req.destroy(new Error("policy larger than 64 KB"));
            else chunks.push(chunk);
          });
          response.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
          response.on("error", reject);
        },
      );
      req.on("timeout", () => req.destroy(new Error("timed out")));
      req.on("error", reject);
      req.end();
    });
  }
}

/** Reads a policy file (RFC 8461 3.2); undefined when it is not a valid STSv1 policy. */
export function parsePolicy(text: string): StsPolicy | undefined {
  const fields = new Map<string, string[]>();
  for (const line of text.split(/\r?\n/)) {
    const match = /^([A-Za-z0-9_]+):\s*(.*?)\s*$/.exec(line);
    if (!match) continue;
    const key = (match[1] as string).toLowerCase();
    fields.set(key, [...(fields.get(key) ?? []), match[2] as string]);
  }
  const mode = fields.get("mode")?.[0];
  const maxAge = Number(fields.get("max_age")?.[0]);
  if (fields.get("version")?.[0] !== "STSv1") return undefined;
  if (mode !== "enforce" && mode !== "testing" && mode !== "none") return undefined;
  if (!Number.isInteger(maxAge) || maxAge < 0) return undefined;
  const mx = (fields.get("mx") ?? []).map((pattern) => pattern.toLowerCase().replace(/\.$/, ""));
  if (mode !== "none" && mx.length === 0) return undefined;
  return { mode, mx, maxAgeMs: Math.min(maxAge, MAX_AGE_S) * 1000 };
}

/** RFC 8461 4.1: `*.example.com` matches one label left of example.com; otherwise the exact name. */
export function mxMatches(policy: StsPolicy, host: string): boolean {
  const name = host.toLowerCase().replace(/\.$/, "");
  return policy.mx.some((pattern) => {
    if (!pattern.startsWith("*.")) return pattern === name;
    const dot = name.indexOf(".");
    return dot > 0 && name.slice(dot + 1) === pattern.slice(2);
  });
}
