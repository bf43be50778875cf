import { isIPv4, isIPv6 } from "node:net";
import { quoteInput } from "./quote.js";

/** One mailbox: an optional display name and the address itself. */
export interface Mailbox {
  name: string;
  address: string;
  /** True when the caller wrote a bare address in angle brackets (`<bob@x.test>`): kept so in headers. */
  bracketed?: boolean;
}

/** RFC 5321 (4.5.3.1): at most 64 octets before the @ and 254 in all; the addresses Mailroom takes are ASCII. */
export const MAX_ADDRESS_LENGTH = 254;
export const MAX_LOCAL_PART_LENGTH = 64;

// Dot-atom local part (RFC 5322 atext) and a host name of LDH labels with a dot, or an address literal.
// Deliberately stricter than the RFC: quoted local parts and comments are rarely real and often abuse.
const LOCAL_PART = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/;
const DOMAIN =
  /^(?=.{1,253}$)([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$/;

export function isValidAddress(address: string): boolean {
  if (address.length > MAX_ADDRESS_LENGTH) return false;
  const at = address.lastIndexOf("@");
  if (at <= 0 || at === address.length - 1) return false;
  const local = address.slice(0, at);
  const domain = address.slice(at + 1);
  return (
    local.length <= MAX_LOCAL_PART_LENGTH &&
    LOCAL_PART.test(local) &&
    (DOMAIN.test(domain) || isAddressLiteral(domain))
  );
}

/** `[192.0.2.1]` or `[IPv6:2001:db8::1]` (RFC 5321 4.1.3), each number in range: `[999.1.1.1]` is no address. */
function isAddressLiteral(domain: string): boolean {
  if (!domain.startsWith("[") || !domain.endsWith("]")) return false;
  const inner = domain.slice(1, -1);
  // node:net would also take an IPv6 zone (`%eth0`), which means nothing to another host.
  if (inner.startsWith("IPv6:")) return !inner.includes("%") && isIPv6(inner.slice(5));
  return isIPv4(inner);
}

/** Why a list of addresses was refused, in words the caller can act on. */
export class AddressListError extends Error {}

/** The list holds more mailboxes than the caller allows; reading stopped at the first one too many. */
export class TooManyAddressesError extends AddressListError {}

/**
 * Reads `a@x.org, "Doe, Jane" <jane@y.org>, <b@z.org>` into mailboxes, and refuses whatever would
 * mean anything other than what it says: every item is a bare address, or a display name (words and
 * quoted strings) followed by one address in angle brackets, and items are separated by commas.
 * `Bob <a@x.org<evil@y.org>>`, `Bob <a@x.org> <b@y.org>`, a name with an unquoted `@`, comments and
 * groups are refused, never reinterpreted; an invalid item fails the whole list rather than being
 * dropped. Written by hand: nodemailer's addressparser (used before) is lenient by design and turned
 * each of those into some other address, and email-addresses parses all of RFC 5322 (comments,
 * obsolete forms) at ~50 µs an address and loses the spaces of `Bob "Q" Smith`.
 *
 * Reading stops with TooManyAddressesError at the mailbox after `maxMailboxes`, and takes linear time.
 */
export function parseAddressList(input: string, maxMailboxes = Number.POSITIVE_INFINITY): Mailbox[] {
  const mailboxes = plainAddresses(input, maxMailboxes) ?? readList(input, maxMailboxes);
  if (mailboxes.length === 0) throw new AddressListError("no email address was given");
  return mailboxes;
}

// Bare addresses made of these characters are read the same by the general reader (test/unit-domain).
const PLAIN_ADDRESS = /^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+$/;

/**
 * The mailboxes of a list of bare, valid addresses (`a@x.org, b@y.org`), or null for anything else.
 * Such lists are what Mailroom stores and most callers send, and each message's lists are read several
 * times (validation, envelope, headers): this skips the general reader for them.
 */
function plainAddresses(input: string, maxMailboxes: number): Mailbox[] | null {
  const mailboxes: Mailbox[] = [];
  for (const piece of input.split(",")) {
    const address = piece.trim();
    if (!PLAIN_ADDRESS.test(address) || !isValidAddress(address)) return null;
    if (mailboxes.length === maxMailboxes) throw tooMany(maxMailboxes);
    mailboxes.push({ name: "", address });
  }
  return mailboxes;
}

function tooMany(maxMailboxes: number): TooManyAddressesError {
  return new TooManyAddressesError(`it holds more than ${maxMailboxes} addresses`);
}

const isSpace = (c: string | undefined) => c === " " || c === "\t";

// What may not stand unquoted in a display name: RFC 5322's specials, less the dot that real names
// carry (`John Q. Public`, obsolete syntax every mail program reads).
const NAME_SPECIALS = new Set(['"', "<", ">", ",", ";", ":", "@", "(", ")", "[", "]", "\\"]);

/** The general reader, which parseAddressList skips for lists of bare addresses (exported for the test that both agree). */
export function readAddressList(input: string, maxMailboxes = Number.POSITIVE_INFINITY): Mailbox[] {
  return readList(input, maxMailboxes);
}

function readList(input: string, maxMailboxes: number): Mailbox[] {
  const mailboxes: Mailbox[] = [];
  let at = 0;
  while (at < input.length) {
    while (isSpace(input[at])) at++;
    if (at === input.length) break;
    // An empty item (`a@x.org,,b@y.org`, or an empty repeated parameter) holds nothing to lose.
    if (input[at] === ",") {
      at++;
      continue;
    }
    if (mailboxes.length === maxMailboxes) throw tooMany(maxMailboxes);
    const start = at;
    const { mailbox, end } = readMailbox(input, at);
    mailboxes.push(mailbox);
    at = end;
    while (isSpace(input[at])) at++;
    if (at < input.length && input[at] !== ",") {
      throw new AddressListError(
        `${quoteInput(input.slice(at))} follows ${quoteInput(input.slice(start, end))}; separate addresses with commas`,
      );
    }
    at++;
  }
  return mailboxes;
}

/** One mailbox from `start` (not a space): a bare address up to the next comma, or `name <address>`. */
function readMailbox(input: string, start: number): { mailbox: Mailbox; end: number } {
  let at = start;
  while (at < input.length && input[at] !== "," && input[at] !== '"' && input[at] !== "<") at++;
  if (at === input.length || input[at] === ",") {
    const address = input.slice(start, at).trimEnd();
    if (!isValidAddress(address)) {
      const colon = address.indexOf(":");
      throw colon >= 0 && !address.slice(0, colon).includes("@")
        ? groupError(address.slice(0, colon))
        : invalidAddress(address);
    }
    return { mailbox: { name: "", address }, end: at };
  }
  const words: string[] = [];
  at = start;
  for (;;) {
    while (isSpace(input[at])) at++;
    const c = input[at];
    if (c === "<") break;
    if (c === undefined || c === ",") {
      throw new AddressListError(
        `${quoteInput(input.slice(start, at).trim())} is a display name without an <address> after it`,
      );
    }
    if (c === '"') {
      const quoted = readQuoted(input, at);
      words.push(quoted.text);
      at = quoted.end;
      continue;
    }
    if (NAME_SPECIALS.has(c)) throw specialInName(input, start, at);
    const wordStart = at;
    while (at < input.length && !isSpace(input[at]) && !NAME_SPECIALS.has(input[at] as string)) at++;
    words.push(input.slice(wordStart, at));
  }
  const close = input.indexOf(">", at + 1);
  if (close < 0) throw new AddressListError(`${quoteInput(input.slice(at))} has no closing ">"`);
  const address = input.slice(at + 1, close).trim();
  if (!isValidAddress(address)) throw invalidAddress(address);
  const name = words.join(" ").trim();
  // `<bob@x.test>` stays bracketed when shown and sent: a bare address costs an HTML message spam points.
  const mailbox: Mailbox = name ? { name, address } : { name, address, bracketed: true };
  return { mailbox, end: close + 1 };
}

/** A quoted string from the quote at `start`: its text (a backslash takes the next character as it is). */
function readQuoted(input: string, start: number): { text: string; end: number } {
  let text = "";
  for (let at = start + 1; at < input.length; at++) {
    const c = input[at];
    if (c === '"') return { text, end: at + 1 };
    if (c === "\\") at++;
    text += input[at] ?? "";
  }
  throw new AddressListError(`${quoteInput(input.slice(start))} has no closing quote`);
}

function specialInName(input: string, start: number, at: number): AddressListError {
  const c = input[at];
  if (c === ":") return groupError(input.slice(start, at));
  if (c === "(")
    return new AddressListError("comments in parentheses are not supported; quote the name instead");
  return new AddressListError(
    `${quoteInput(input.slice(start))} has "${c}" outside quotes in a display name; quote the name ("Name" <address>), and separate addresses with commas`,
  );
}

function groupError(name: string): AddressListError {
  return new AddressListError(
    `address groups (${quoteInput(`${name.trim()}: …;`)}) are not supported; list the addresses`,
  );
}

function invalidAddress(address: string): AddressListError {
  // A form body turns an unencoded + into a space: say so when that is what happened.
  const withPlus = address.replaceAll(" ", "+");
  const plus =
    address.includes(" ") && isValidAddress(withPlus)
      ? ` (if it was ${quoteInput(withPlus)}: a "+" sent unencoded in a form body reads as a space, so encode it as %2B)`
      : "";
  return new AddressListError(`${quoteInput(address || "<>")} is not a valid email address${plus}`);
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

/** The mailboxes' texts joined by ", " (a loop: a list of one, every send's From and To, is its text alone). */
export function formatMailboxList(mailboxes: readonly Mailbox[]): string {
  let text = "";
  for (let i = 0; i < mailboxes.length; i++) {
    text += (i === 0 ? "" : ", ") + formatMailbox(mailboxes[i] as Mailbox);
  }
  return text;
}
