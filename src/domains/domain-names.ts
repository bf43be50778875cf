import { domainToASCII } from "node:url";

/** The longest domain name DNS carries (RFC 1035: 253 characters in text form). */
const MAX_NAME = 253;
const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/**
 * A sending domain as stored and published: lower case ASCII, internationalised labels in punycode
 * (IDNA, so `bücher.example` and `xn--bcher-kva.example` are one domain), at least two labels, no
 * trailing dot. Undefined when it is not such a name; the caller says what to fix.
 */
export function normalizeDomainName(input: string): string | undefined {
  const trimmed = input.trim();
  if (trimmed !== input || trimmed === "" || trimmed.endsWith(".")) return undefined;
  const ascii = domainToASCII(trimmed.toLowerCase());
  if (ascii === "" || ascii.length > MAX_NAME) return undefined;
  const labels = ascii.split(".");
  if (labels.length < 2 || !labels.every((label) => LABEL.test(label))) return undefined;
  // A top-level domain is never all digits: that is an IP address, not a domain.
  if (/^\d+$/.test(labels[labels.length - 1] as string)) return undefined;
  return ascii;
}

/**
 * The domain of an address and each of its parents with at least two labels, nearest first:
 * `a@news.example.com` gives news.example.com, example.com. The domain part is lower-cased and
 * punycoded as stored domains are.
 */
export function domainAndParents(address: string): string[] {
  const at = address.lastIndexOf("@");
  const domain = domainToASCII(address.slice(at + 1).toLowerCase());
  const labels = domain.split(".");
  const names: string[] = [];
  for (let i = 0; i <= labels.length - 2; i++) names.push(labels.slice(i).join("."));
  return names;
}
