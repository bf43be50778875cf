import type { SigningKey } from "../delivery/dkim-sign.js";
import type { SigningKeySource } from "../delivery/steps.js";
import type { SecretBox } from "../domain/secret-box.js";
import type { MailStore } from "../store/types.js";
import { dkimKeyContext, type StoredDkimKey } from "./dkim-keys.js";
import { domainAndParents } from "./domain-names.js";

/** A domain as signing and the sending policy know it: owner, status, active keys (unsealed at first use). */
interface Entry {
  accountSid: string;
  domainName: string;
  verified: boolean;
  active: StoredDkimKey[];
  opened?: SigningKey[];
}

/**
 * Every sending domain of the installation, read at once and kept, for the two questions asked per
 * message: which DKIM keys sign it (the sign step) and whether its From domain is verified (the
 * sending policy). A change made through this process (create, verify, rotate, delete) is seen by
 * the next message; another process's change within `ttlMs` (PostgreSQL), refreshed in the
 * background so no message waits for it. A domain serves only its owner and the accounts below it,
 * and a message from `news.example.com` with no domain of its own is signed with `example.com`'s
 * key (d=example.com) and counts as verified when example.com is.
 */
export class DomainDirectory implements SigningKeySource {
  private entries = new Map<string, Entry>();
  private loadedAt = Number.NEGATIVE_INFINITY;
  /** Set by a change of this process: the next lookup waits for a fresh read. */
  private mustReload = true;
  private loading: Promise<void> | undefined;
  private readonly lineages = new Map<string, { sids: Set<string>; at: number }>();

  constructor(
    private readonly store: Pick<MailStore, "listSigningDomains" | "findAccountLineage">,
    private readonly secrets: SecretBox,
    private readonly ttlMs = 10_000,
  ) {}

  /** A domain changed in this process: read them all again before the next message is signed. */
  invalidate(): void {
    this.mustReload = true;
  }

  keysFor(
    accountSid: string,
    fromAddress: string,
  ): SigningKey[] | undefined | Promise<SigningKey[] | undefined> {
    // The path of every message while no domain exists: no closure, no promise.
    if (this.entries.size === 0 && !this.mustReload && Date.now() - this.loadedAt <= this.ttlMs)
      return undefined;
    const open = (entry: Entry | undefined) => (entry === undefined ? undefined : this.open(entry));
    const found = this.fresh(() => this.entryFor(accountSid, fromAddress));
    return found instanceof Promise ? found.then(open) : open(found);
  }

  /** Whether the From address's domain (or a parent) is a verified domain of the account's lineage. */
  isVerified(accountSid: string, fromAddress: string): boolean | Promise<boolean> {
    const verified = (entry: Entry | undefined) => entry?.verified === true;
    const found = this.fresh(() => this.entryFor(accountSid, fromAddress));
    return found instanceof Promise ? found.then(verified) : verified(found);
  }

  /** `read` over entries read since the last change of this process (and at most ttlMs old, mostly). */
  private fresh<T>(read: () => T | Promise<T>): T | Promise<T> {
    // Again after the load if a change came during it (the load in flight may predate the change).
    if (this.mustReload) return this.reload().then(() => this.fresh(read));
    if (Date.now() - this.loadedAt > this.ttlMs) void this.reload().catch(() => {});
    return read();
  }

  /** The nearest domain of the address's that the account or one of its ancestors owns. */
  private entryFor(accountSid: string, fromAddress: string): Entry | undefined | Promise<Entry | undefined> {
    if (this.entries.size === 0) return undefined;
    for (const name of domainAndParents(fromAddress)) {
      const entry = this.entries.get(name);
      if (entry === undefined) continue;
      if (entry.accountSid === accountSid) return entry;
      // A domain is one account's: another tenant's domain neither signs nor verifies this mail.
      return this.ownedAbove(accountSid, entry.accountSid).then((owned) => (owned ? entry : undefined));
    }
    return undefined;
  }

  /** Whether `owner` is an ancestor of `accountSid` (lineages kept for the TTL). */
  private async ownedAbove(accountSid: string, owner: string): Promise<boolean> {
    let lineage = this.lineages.get(accountSid);
    if (lineage === undefined || Date.now() - lineage.at > this.ttlMs) {
      const rows = await this.store.findAccountLineage({ sid: accountSid });
      lineage = { sids: new Set(rows.map((row) => row.sid)), at: Date.now() };
      this.lineages.set(accountSid, lineage);
    }
    return lineage.sids.has(owner);
  }

  private open(entry: Entry): SigningKey[] | undefined {
    if (entry.active.length === 0) return undefined;
    entry.opened ??= entry.active.map((key) => ({
      domain: entry.domainName,
      selector: key.selector,
      privateKeyPem: this.secrets.open(key.privateKeySealed, dkimKeyContext(entry.domainName, key.selector)),
    }));
    return entry.opened;
  }

  private reload(): Promise<void> {
    this.loading ??= (async () => {
      try {
        this.mustReload = false;
        const rows = await this.store.listSigningDomains();
        const entries = new Map<string, Entry>();
        for (const row of rows) {
          const keys = JSON.parse(row.dkim_keys) as StoredDkimKey[];
          const previous = this.entries.get(row.domain_name);
          const active = keys.filter((key) => key.state === "active");
          const entry: Entry = {
            accountSid: row.account_sid,
            domainName: row.domain_name,
            verified: row.status === "verified",
            active,
          };
          // Unsealed keys are kept while the same keys stay active.
          if (previous?.opened && sameSelectors(previous.active, active)) entry.opened = previous.opened;
          entries.set(row.domain_name, entry);
        }
        this.entries = entries;
        this.loadedAt = Date.now();
        this.lineages.clear();
      } catch (error) {
        this.mustReload = true;
        throw error;
      } finally {
        this.loading = undefined;
      }
    })();
    return this.loading;
  }
}

function sameSelectors(a: readonly StoredDkimKey[], b: readonly StoredDkimKey[]): boolean {
  return a.length === b.length && a.every((key, i) => key.selector === b[i]?.selector);
}
