import addressparser from "nodemailer/lib/addressparser";

/** One mailbox: an optional display name and the address itself. */
export interface Mailbox {
  name: string;
  address: string;
  /** True when the caller wrote a bare address in angle brackets (`<bob@x.test>`): kept so in headers. */
  bracketed?: boolean;
}

// Dot-atom local part (RFC 5322 atext) and a host name of LDH labels with a dot, or an IP literal.
// Deliberately stricter than the RFC: quoted local parts and comments are rarely real and often abuse.
const LOCAL_PART = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/;
const DOMAIN =
  /^(?=.{1,253}$)([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$/;
const IP_LITERAL = /^\[(\d{1,3}(\.\d{1,3}){3}|IPv6:[0-9A-Fa-f:.]+)\]$/;

export function isValidAddress(address: string): boolean {
  const at = address.lastIndexOf("@");
  if (at <= 0 || at === address.length - 1 || address.length > 254) return false;
  const local = address.slice(0, at);
  const domain = address.slice(at + 1);
  return local.length <= 64 && LOCAL_PART.test(local) && (DOMAIN.test(domain) || IP_LITERAL.test(domain));
}

/** Why a list of addresses was refused, in words the caller can act on. */
export class AddressListError extends Error {}

/**
 * Parses `a@x.org, "Doe, Jane" <jane@y.org>` into mailboxes. Every item must be a valid address:
 * an invalid one fails the whole list rather than being dropped silently.
 */
export function parseAddressList(input: string): Mailbox[] {
  const plain = plainAddresses(input);
  if (plain) return plain;
  const items = addressparser(input);
  const mailboxes: Mailbox[] = [];
  for (const item of items) {
    if ("group" in item) {
      throw new AddressListError(`address groups ("${item.name}: …;") are not supported; list the addresses`);
    }
    const address = item.address.trim();
    if (!isValidAddress(address)) {
      const shown = address || item.name;
      throw new AddressListError(`"${shown}" is not a valid email address`);
    }
    const name = item.name.trim();
    // `<bob@x.test>` stays bracketed when shown and sent: a bare address costs an HTML message spam points.
    if (!name && input.includes(`<${address}>`)) mailboxes.push({ name, address, bracketed: true });
    else mailboxes.push({ name, address });
  }
  if (mailboxes.length === 0) throw new AddressListError("no email address was given");
  return mailboxes;
}

// Bare addresses made of these characters mean to addressparser exactly what they say (test/unit-domain).
const PLAIN_ADDRESS = /^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+$/;

/**
 * The mailboxes of a list of bare, valid addresses (`a@x.org, b@y.org`), or null for anything else.
 * Such lists are what Mailroom stores and most callers send, and each message's lists are read several
 * times (validation, envelope, headers): this skips the general parser for them.
 */
function plainAddresses(input: string): Mailbox[] | null {
  const mailboxes: Mailbox[] = [];
  for (const piece of input.split(",")) {
    const address = piece.trim();
    if (!PLAIN_ADDRESS.test(address) || !isValidAddress(address)) return null;
    mailboxes.push({ name: "", address });
  }
  return mailboxes;
}

// A display name made only of atext and spaces can stand bare; anything else is quoted.
const BARE_NAME = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]*$/;

/** The canonical text of one mailbox, as stored and echoed back. */
export function formatMailbox(mailbox: Mailbox): string {
  if (!mailbox.name) return mailbox.bracketed ? `<${mailbox.address}>` : mailbox.address;
  const name = BARE_NAME.test(mailbox.name)
    ? mailbox.name
    : `"${mailbox.name.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
  return `${name} <${mailbox.address}>`;
}

export function formatMailboxList(mailboxes: readonly Mailbox[]): string {
  return mailboxes.map(formatMailbox).join(", ");
}
