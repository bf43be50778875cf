import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import { lookup as dnsLookupAsync } from "node:dns/promises";
import { isIP, type LookupFunction } from "node:net";
import ipaddr from "ipaddr.js";
import { ApiError } from "../domain/errors.js";
import { quoteInput } from "../domain/quote.js";

/**
 * Where webhooks and StatusCallbacks may be POSTed. A URL given by a tenant must not turn Mailroom into a
 * way into the operator's network (server-side request forgery): by default an address that is not
 * public unicast is refused, both when the URL is given (checkWebhookUrl) and when a socket connects
 * (guardedLookup), because a name can resolve elsewhere later (DNS rebinding).
 * MAILROOM_WEBHOOK_ALLOW_PRIVATE=1 (allowPrivate) lifts all of it, for receivers on the operator's
 * own network and for tests.
 */
export interface AddressGuardOptions {
  allowPrivate: boolean;
}

// Cloud metadata services, refused by name in the message. Most sit in ranges refused anyway
// (link-local, unique-local, CGNAT, reserved); Azure's wire server is public unicast.
const METADATA_ADDRESSES = new Set([
  "169.254.169.254", // AWS, GCP, Azure, OpenStack, DigitalOcean…
  "169.254.170.2", // AWS ECS task metadata
  "169.254.170.23", // AWS EKS pod identity
  "168.63.129.16", // Azure wire server
  "100.100.100.200", // Alibaba Cloud
  "192.0.0.192", // Oracle Cloud
  "fd00:ec2::254", // AWS over IPv6
  "fd00:ec2::23", // AWS EKS pod identity over IPv6
]);

// IPv6 ranges whose last 32 bits are an IPv4 address that is what the packet reaches: judged by it.
const EMBEDS_IPV4 = new Set(["ipv4Mapped", "rfc6145", "rfc6052"]);

/**
 * Why an address may not be a webhook's destination (e.g. "loopback", "private", "cloud metadata"),
 * or null if it may. IPv4-mapped, NAT64 and 6to4 forms are judged by the IPv4 address inside them.
 */
export function refusedAddressReason(address: string): string | null {
  let parsed: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    parsed = ipaddr.parse(address.replace(/^\[|\]$/g, "").replace(/%.*$/, ""));
  } catch {
    return "not an IP address";
  }
  return reasonFor(parsed);
}

function reasonFor(parsed: ipaddr.IPv4 | ipaddr.IPv6): string | null {
  if (METADATA_ADDRESSES.has(parsed.toNormalizedString()) || METADATA_ADDRESSES.has(parsed.toString())) {
    return "cloud metadata";
  }
  if (parsed.kind() === "ipv4") {
    const range = parsed.range();
    return range === "unicast" ? null : describeRange(range);
  }
  const v6 = parsed as ipaddr.IPv6;
  const range = v6.range();
  if (EMBEDS_IPV4.has(range)) return reasonFor(embeddedIpv4(v6, 12));
  // 6to4: 2002:AABB:CCDD::/48 carries IPv4 AA.BB.CC.DD.
  if (range === "6to4") return reasonFor(embeddedIpv4(v6, 2));
  if (range !== "unicast") return describeRange(range);
  // ::a.b.c.d (IPv4-compatible, deprecated) is unicast to ipaddr.js; no public host lives there.
  if (v6.parts.slice(0, 6).every((part) => part === 0)) return "IPv4-compatible (reserved)";
  return null;
}

function embeddedIpv4(v6: ipaddr.IPv6, byteOffset: number): ipaddr.IPv4 {
  const bytes = v6.toByteArray().slice(byteOffset, byteOffset + 4);
  return new ipaddr.IPv4(bytes);
}

const RANGE_NAMES: Record<string, string> = {
  unspecified: "unspecified",
  broadcast: "broadcast",
  multicast: "multicast",
  linkLocal: "link-local",
  loopback: "loopback",
  carrierGradeNat: "carrier-grade NAT",
  private: "private",
  uniqueLocal: "unique-local",
  reserved: "reserved",
};

function describeRange(range: string): string {
  return RANGE_NAMES[range] ?? `special-purpose (${range})`;
}

/** An address refused by the guard when a socket connects; the webhook sender reports it as such. */
export class AddressRefusedError extends Error {
  readonly code = "EWEBHOOKADDRESS";
  constructor(
    readonly host: string,
    readonly address: string,
    readonly reason: string,
  ) {
    super(`${host} resolves to ${address}, a ${reason} address; webhooks may only reach public addresses`);
    this.name = "AddressRefusedError";
  }
}

/**
 * The first refused address among a host's, as an AddressRefusedError, or null. An IP literal is its
 * own only address: sockets connect to it without any lookup, so the sender must check it this way.
 */
export function refusedAmong(host: string, addresses: readonly string[]): AddressRefusedError | null {
  for (const address of addresses) {
    const reason = refusedAddressReason(address);
    if (reason !== null) return new AddressRefusedError(host, address, reason);
  }
  return null;
}

/**
 * A `lookup` for sockets (http.Agent, net.connect) that refuses a name resolving to any refused
 * address: every answer is checked, since the connection may try any of them (happy eyeballs).
 */
export function guardedLookup(allowPrivate: boolean): LookupFunction {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (error, addresses: LookupAddress[]) => {
      if (error) {
        callback(error, "", 0);
        return;
      }
      const refused = allowPrivate
        ? null
        : refusedAmong(
            hostname,
            addresses.map((a) => a.address),
          );
      if (refused) {
        callback(refused, "", 0);
        return;
      }
      if (options.all) {
        callback(null, addresses);
        return;
      }
      const first = addresses[0];
      if (first === undefined) {
        callback(Object.assign(new Error(`${hostname} has no address`), { code: "ENOTFOUND" }), "", 0);
        return;
      }
      callback(null, first.address, first.family);
    });
  };
}

/**
 * Checks a webhook (or callback) URL as given by a client: http or https, no credentials in it, and a
 * host that resolves, only to addresses the guard allows. Throws a coded client error saying what to fix.
 */
export async function checkWebhookUrl(url: string, options: AddressGuardOptions): Promise<void> {
  const parameter = "Url";
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ApiError("WebhookUrlInvalid", `${parameter} ${quoteInput(url)} is not a valid URL.`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new ApiError(
      "WebhookUrlInvalid",
      `${parameter} must be an http:// or https:// URL, not ${quoteInput(parsed.protocol.slice(0, -1))}.`,
    );
  }
  if (parsed.username !== "" || parsed.password !== "") {
    throw new ApiError(
      "WebhookUrlCredentials",
      `${parameter} carries a user name or password; Mailroom does not send credentials in URLs. Remove them and verify deliveries by their webhook-signature instead.`,
    );
  }
  await checkUrlHost(parsed, options, parameter);
}

/**
 * Checks only where a URL leads: a host that resolves, only to addresses the guard allows (nothing to
 * check with allowPrivate). `parameter` names the URL's parameter in the error. For a message's
 * StatusCallback, whose form the message model has checked already (credentials in it are sent as
 * Basic authentication, as Restcomm's and Twilio's callbacks allow).
 */
export async function checkUrlHost(
  url: URL,
  options: AddressGuardOptions,
  parameter: string,
  /**
   * Let a lookup that failed for now (a DNS timeout, SERVFAIL) pass: a message must not be refused
   * because its callback's DNS is briefly down; every POST is still checked as it connects.
   */
  passTemporaryFailures = false,
): Promise<void> {
  if (options.allowPrivate) return;
  const host = url.hostname.replace(/^\[|\]$/g, "");
  let addresses: string[];
  if (isIP(host) !== 0) {
    addresses = [host];
  } else if ((allowedNames.get(host) ?? 0) > Date.now()) {
    return;
  } else {
    try {
      addresses = (await dnsLookupAsync(host, { all: true })).map((a) => a.address);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? "";
      const missing = code === "ENOTFOUND" || code === "ENODATA";
      if (!missing && passTemporaryFailures) return;
      const why = missing ? "does not resolve" : `could not be resolved (${code})`;
      throw new ApiError(
        "WebhookHostNotFound",
        `${parameter}'s host ${quoteInput(host)} ${why}; use a host name with a public address.`,
      );
    }
  }
  const refused = refusedAmong(host, addresses);
  if (refused) {
    throw new ApiError(
      "WebhookAddressRefused",
      `${parameter}'s host ${quoteInput(host)} resolves to ${refused.address}, a ${refused.reason} address; webhooks may only reach public addresses (the operator can allow private ones with MAILROOM_WEBHOOK_ALLOW_PRIVATE=1).`,
    );
  }
  if (isIP(host) === 0) {
    if (allowedNames.size >= ALLOWED_NAMES_KEPT) allowedNames.clear();
    allowedNames.set(host, Date.now() + ALLOWED_NAME_MS);
  }
}

/**
 * Host names found public lately, and until when that is trusted: a busy sender whose messages all
 * name one StatusCallback host costs one lookup every few seconds, not one per message. A refusal is
 * never kept, and every POST checks its addresses again as it connects.
 */
const allowedNames = new Map<string, number>();
const ALLOWED_NAME_MS = 10_000;
const ALLOWED_NAMES_KEPT = 1000;
