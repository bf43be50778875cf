import type { Resolver } from "node:dns/promises";
import { ApiError, DomainCheckCodes } from "../domain/errors.js";
import { isSid, newSid } from "../domain/ids.js";
import { quoteInput } from "../domain/quote.js";
import type { SecretBox } from "../domain/secret-box.js";
import type { DomainPatch, DomainRow } from "../store/domain-queries.js";
import type { MailStore, NotificationRow } from "../store/types.js";
import {
  DKIM_ALGORITHMS,
  type DkimAlgorithm,
  dkimKeyContext,
  newDkimKey,
  type StoredDkimKey,
} from "./dkim-keys.js";
import {
  checkRecords,
  type DomainRecordState,
  expectedRecords,
  type RecordSettings,
  withPreviousStatus,
} from "./dns-records.js";
import { normalizeDomainName } from "./domain-names.js";

export interface DomainServiceOptions {
  /** MAILROOM_MAX_DOMAINS. */
  maxDomains: number;
  records: RecordSettings;
  /** MAILROOM_DOMAIN_CHECK_INTERVAL_MS: when a domain's records are looked up again by themselves. */
  checkIntervalMs: number;
}

/** Told when a domain's keys or status changed in this process (the signer's cache, the policy's). */
export type DomainsChanged = () => void;

/** A Notification's log level for an error (Restcomm: 0 error, 1 warning). */
const LOG_ERROR = 0;

/**
 * The Domains resource's operations: DKIM keys made here (private keys sealed at once), the DNS
 * records to publish, their verification (the API's Verify and the background re-check share it),
 * rotation and retirement of keys. Who may act for the account is the HTTP edge's (assertMayAct).
 */
export class DomainService {
  constructor(
    private readonly store: MailStore,
    private readonly secrets: SecretBox,
    private readonly resolver: Resolver,
    private readonly options: DomainServiceOptions,
    private readonly changed: DomainsChanged = () => {},
  ) {}

  async create(accountSid: string, input: { domainName?: string; algorithms?: string }): Promise<DomainRow> {
    if (input.domainName === undefined)
      throw new ApiError("DomainNameMissing", "DomainName can not be null.");
    const domainName = normalizeDomainName(input.domainName);
    if (domainName === undefined) {
      throw new ApiError(
        "InvalidDomainName",
        `DomainName ${quoteInput(input.domainName)} is not a domain name: give one like example.com (at least two labels of letters, digits and hyphens, no trailing dot).`,
      );
    }
    const algorithms = parseAlgorithms(input.algorithms ?? "rsa");
    const now = Date.now();
    const keys = await Promise.all(
      algorithms.map((algorithm) => this.newKey(domainName, algorithm, "active", now)),
    );
    const records = withPreviousStatus(expectedRecords(domainName, keys, this.options.records), []);
    const row: DomainRow = {
      sid: newSid("DM", now),
      account_sid: accountSid,
      domain_name: domainName,
      status: "pending",
      dns_records: JSON.stringify(records),
      dkim_keys: JSON.stringify(keys),
      date_checked: null,
      next_check_at: now + this.options.checkIntervalMs,
      date_created: now,
      date_updated: now,
    };
    const outcome = await this.store.insertDomain(row, this.options.maxDomains);
    if (outcome === "taken") {
      throw new ApiError(
        "DomainTaken",
        `${domainName} is already a sending domain of an account of this Mailroom; a domain has one owner (send from it as that account or a sub-account of it).`,
      );
    }
    if (outcome === "limit") {
      throw new ApiError(
        "DomainLimitReached",
        `Account ${accountSid} already has ${this.options.maxDomains} domains, the most MAILROOM_MAX_DOMAINS allows; delete one first.`,
      );
    }
    this.changed();
    return row;
  }

  async find(accountSid: string, sid: string): Promise<DomainRow> {
    const domain = isSid(sid, "DM") ? await this.store.findDomain(accountSid, sid) : undefined;
    if (!domain) throw notFound(accountSid, sid);
    return domain;
  }

  async delete(accountSid: string, sid: string): Promise<void> {
    const deleted = isSid(sid, "DM") && (await this.store.deleteDomain(accountSid, sid));
    if (!deleted) throw notFound(accountSid, sid);
    this.changed();
  }

  /** Looks the records up now (Verify): answers the domain as it is after the check. */
  async verify(accountSid: string, sid: string): Promise<DomainRow> {
    return this.check(await this.find(accountSid, sid), Date.now());
  }

  /**
   * Checks a domain's records and stores what was found; a pending key whose record verifies takes
   * over signing. A verified domain whose DKIM record is gone or changed becomes `failed`, with a
   * Notification to its account.
   */
  async check(domain: DomainRow, now: number): Promise<DomainRow> {
    const before = JSON.parse(domain.dns_records) as DomainRecordState[];
    const records = await checkRecords(this.resolver, before);
    const keys = promoteVerified(JSON.parse(domain.dkim_keys) as StoredDkimKey[], records);
    const status = domainStatus(domain.status, keys, records);
    const patch: DomainPatch = {
      status,
      dns_records: JSON.stringify(records),
      dkim_keys: JSON.stringify(keys),
      date_checked: now,
      next_check_at: now + this.options.checkIntervalMs,
      date_updated: now,
    };
    const lost = domain.status === "verified" && status === "failed";
    const updated = await this.store.updateDomain(
      domain.account_sid,
      domain.sid,
      patch,
      lost ? lostNotification(domain, records, now) : undefined,
    );
    if (!updated) throw notFound(domain.account_sid, domain.sid);
    if (status !== domain.status || patch.dkim_keys !== domain.dkim_keys) this.changed();
    return updated;
  }

  /**
   * Rotation: a new key per algorithm in use, with new selectors. Both are published and listed; the
   * new one signs once its record verifies (Verify, or the re-check), and the old one is then
   * `previous` until retired.
   */
  async rotate(accountSid: string, sid: string): Promise<DomainRow> {
    const domain = await this.find(accountSid, sid);
    const keys = JSON.parse(domain.dkim_keys) as StoredDkimKey[];
    if (keys.some((key) => key.state === "pending")) {
      throw new ApiError(
        "RotationPending",
        `Domain ${domain.domain_name} already has a new key waiting for its DNS record: publish it and Verify, or retire it (DELETE …/Keys/{Selector}) before rotating again.`,
      );
    }
    const algorithms = [...new Set(keys.filter((key) => key.state === "active").map((key) => key.algorithm))];
    const now = Date.now();
    const fresh = await Promise.all(
      (algorithms.length > 0 ? algorithms : (["rsa"] as DkimAlgorithm[])).map((algorithm) =>
        this.newKey(domain.domain_name, algorithm, "pending", now),
      ),
    );
    return this.saveKeys(domain, [...keys, ...fresh], now);
  }

  /** Retires a key that no longer signs (pending or previous): its record may then be removed. */
  async retireKey(accountSid: string, sid: string, selector: string): Promise<DomainRow> {
    const domain = await this.find(accountSid, sid);
    const keys = JSON.parse(domain.dkim_keys) as StoredDkimKey[];
    const key = keys.find((k) => k.selector === selector);
    if (!key) {
      throw new ApiError(
        "DkimKeyNotFound",
        `Domain ${domain.domain_name} has no DKIM key with selector ${quoteInput(selector)}.`,
      );
    }
    if (key.state === "active") {
      throw new ApiError(
        "DkimKeyInUse",
        `Key ${selector} of ${domain.domain_name} is signing mail; rotate (POST …/Keys), publish and verify the new key first, then retire this one.`,
      );
    }
    return this.saveKeys(
      domain,
      keys.filter((k) => k !== key),
      Date.now(),
    );
  }

  private async saveKeys(domain: DomainRow, keys: StoredDkimKey[], now: number): Promise<DomainRow> {
    const previous = JSON.parse(domain.dns_records) as DomainRecordState[];
    const records = withPreviousStatus(
      expectedRecords(domain.domain_name, keys, this.options.records),
      previous,
    );
    const updated = await this.store.updateDomain(domain.account_sid, domain.sid, {
      dkim_keys: JSON.stringify(keys),
      dns_records: JSON.stringify(records),
      date_updated: now,
    });
    if (!updated) throw notFound(domain.account_sid, domain.sid);
    this.changed();
    return updated;
  }

  private async newKey(
    domainName: string,
    algorithm: DkimAlgorithm,
    state: StoredDkimKey["state"],
    now: number,
  ): Promise<StoredDkimKey> {
    const key = await newDkimKey(algorithm, now);
    return {
      selector: key.selector,
      algorithm,
      state,
      publicKey: key.publicKey,
      privateKeySealed: this.secrets.seal(key.privateKeyPem, dkimKeyContext(domainName, key.selector)),
      created: now,
    };
  }
}

/** `rsa` or `rsa,ed25519`: RSA always signs (every receiver checks it); Ed25519 only as a second signature. */
export function parseAlgorithms(text: string): DkimAlgorithm[] {
  const names = text
    .split(",")
    .map((name) => name.trim().toLowerCase())
    .filter((name) => name !== "");
  const unique = [...new Set(names)];
  const unknown = unique.find((name) => !(DKIM_ALGORITHMS as readonly string[]).includes(name));
  if (unknown !== undefined || !unique.includes("rsa")) {
    throw new ApiError(
      "InvalidDkimAlgorithms",
      `DkimAlgorithms ${quoteInput(text)} is not valid: send rsa (the default) or rsa,ed25519; RSA always signs, since not every receiver checks Ed25519.`,
    );
  }
  return DKIM_ALGORITHMS.filter((algorithm) => unique.includes(algorithm));
}

/** A pending key whose record verified becomes active; the active key of its algorithm, previous. */
function promoteVerified(keys: StoredDkimKey[], records: readonly DomainRecordState[]): StoredDkimKey[] {
  const verified = (key: StoredDkimKey) =>
    records.some((r) => r.purpose === "dkim" && r.selector === key.selector && r.status === "verified");
  const promoted = new Set(
    keys.filter((key) => key.state === "pending" && verified(key)).map((k) => k.algorithm),
  );
  if (promoted.size === 0) return keys;
  return keys.map((key) => {
    if (!promoted.has(key.algorithm)) return key;
    if (key.state === "pending") return { ...key, state: "active" };
    if (key.state === "active") return { ...key, state: "previous" };
    return key;
  });
}

/**
 * Verified while every active key's DKIM record is published as told (DKIM is what signing needs;
 * SPF, DMARC and the bounce MX are reported but do not decide). Until then pending; a verified
 * domain whose record is gone or changed is failed. A record not checked (temporary DNS failure)
 * changes nothing.
 */
function domainStatus(
  before: string,
  keys: readonly StoredDkimKey[],
  records: readonly DomainRecordState[],
): string {
  const dkim = keys
    .filter((key) => key.state === "active")
    .map((key) => records.find((r) => r.purpose === "dkim" && r.selector === key.selector));
  if (dkim.some((r) => r === undefined || r.error !== null)) return before;
  if (dkim.every((r) => r?.status === "verified")) return "verified";
  return before === "pending" ? "pending" : "failed";
}

function lostNotification(
  domain: DomainRow,
  records: readonly DomainRecordState[],
  now: number,
): NotificationRow {
  const broken = records
    .filter((r) => r.purpose === "dkim" && r.status !== "verified")
    .map((r) => `${r.name} is ${r.status}${r.found ? ` (found: ${r.found.slice(0, 200)})` : ""}`);
  return {
    sid: newSid("NO", now),
    account_sid: domain.account_sid,
    date_created: now,
    log: LOG_ERROR,
    error_code: DomainCheckCodes.DomainRecordsLost,
    message_text: `Domain ${domain.domain_name} (${domain.sid}) lost its DKIM record: ${broken.join("; ")}. Mail from it is signed with a key receivers cannot check; publish the record shown in dns_records again and Verify.`,
    message_sid: null,
    request_url: null,
    request_method: null,
    request_variables: null,
    response_headers: null,
    response_body: null,
  };
}

function notFound(accountSid: string, sid: string): ApiError {
  return new ApiError("DomainNotFound", `No domain ${quoteInput(sid)} in account ${accountSid}.`);
}
