import type { Resolver } from "node:dns/promises";
import { isNoRecord } from "../dns/resolver.js";
import { dkimRecordValue, type StoredDkimKey } from "./dkim-keys.js";

export const RECORD_PURPOSES = ["dkim", "spf", "dmarc", "bounce"] as const;
export type RecordPurpose = (typeof RECORD_PURPOSES)[number];
/** What the last check found: the record as told, none at all, or another one (`found` says what). */
export type RecordStatus = "verified" | "missing" | "mismatch";

/** A record the user is told to publish. */
export interface ExpectedRecord {
  type: "TXT" | "MX";
  name: string;
  value: string;
  purpose: RecordPurpose;
  /** The DKIM key's selector (dkim records only). */
  selector?: string;
}

/** A record with its last check, as stored (domains.dns_records) and shown. */
export interface DomainRecordState extends ExpectedRecord {
  status: RecordStatus;
  /** What was published instead (mismatch), else null. */
  found: string | null;
  /** A temporary DNS failure at the last check (the status is then the one before it), else null. */
  error: string | null;
}

/** Where the records point: settings read once (see DomainService). */
export interface RecordSettings {
  /** SPF mechanisms for the sending addresses (MAILROOM_SPF_INCLUDE), e.g. `include:_spf.example.net`. */
  spfMechanisms: readonly string[];
  /** The host bounces are received on (the return-path subdomain's MX). */
  bounceHost: string;
}

/** The subdomain whose MX receives bounces (the return path). */
export const BOUNCE_LABEL = "bounces";

/** Every record to publish for a domain with these keys (retired keys are no longer in `keys`). */
export function expectedRecords(
  domainName: string,
  keys: readonly StoredDkimKey[],
  settings: RecordSettings,
): ExpectedRecord[] {
  const records: ExpectedRecord[] = keys.map((key) => ({
    type: "TXT",
    name: `${key.selector}._domainkey.${domainName}`,
    value: dkimRecordValue(key),
    purpose: "dkim",
    selector: key.selector,
  }));
  records.push(
    {
      type: "TXT",
      name: domainName,
      value: `v=spf1 ${settings.spfMechanisms.join(" ")} ~all`,
      purpose: "spf",
    },
    { type: "TXT", name: `_dmarc.${domainName}`, value: "v=DMARC1; p=none", purpose: "dmarc" },
    {
      type: "MX",
      name: `${BOUNCE_LABEL}.${domainName}`,
      value: `10 ${settings.bounceHost}`,
      purpose: "bounce",
    },
  );
  return records;
}

/** Records not checked yet: missing until a check finds them; earlier results kept for the same record. */
export function withPreviousStatus(
  expected: readonly ExpectedRecord[],
  previous: readonly DomainRecordState[],
): DomainRecordState[] {
  return expected.map((record) => {
    const before = previous.find(
      (p) => p.purpose === record.purpose && p.name === record.name && p.value === record.value,
    );
    return { ...record, status: before?.status ?? "missing", found: before?.found ?? null, error: null };
  });
}

/** One record's check: its status, what was found, or a temporary failure. */
type Check = { status: RecordStatus; found: string | null } | { temporary: string };

/**
 * Looks every record up and says of each whether it is published as told. A lookup that failed for
 * now (SERVFAIL, timeout) keeps the record's earlier status and says so in `error`: a server that
 * did not answer has not said the record is gone.
 */
export async function checkRecords(
  resolver: Resolver,
  records: readonly DomainRecordState[],
): Promise<DomainRecordState[]> {
  const txtByName = new Map<string, Promise<string[] | { error: unknown }>>();
  const txt = (name: string) => {
    let answer = txtByName.get(name);
    if (!answer) {
      answer = resolver.resolveTxt(name).then(
        (chunks) => chunks.map((parts) => parts.join("")),
        (error: unknown) => ({ error }),
      );
      txtByName.set(name, answer);
    }
    return answer;
  };
  return Promise.all(
    records.map(async (record) => {
      const check = await checkOne(resolver, record, txt);
      if ("temporary" in check) return { ...record, error: check.temporary };
      return { ...record, status: check.status, found: check.found, error: null };
    }),
  );
}

async function checkOne(
  resolver: Resolver,
  record: DomainRecordState,
  txt: (name: string) => Promise<string[] | { error: unknown }>,
): Promise<Check> {
  if (record.type === "MX") {
    try {
      const answers = await resolver.resolveMx(record.name);
      const host = record.value.split(" ")[1] ?? "";
      if (answers.some((mx) => sameHost(mx.exchange, host))) return { status: "verified", found: null };
      const found = answers.map((mx) => `${mx.priority} ${mx.exchange}`).join(", ");
      return answers.length === 0 ? { status: "missing", found: null } : { status: "mismatch", found };
    } catch (error) {
      return failed(error);
    }
  }
  const answer = await txt(record.name);
  if (!Array.isArray(answer)) return failed(answer.error);
  const [relevant, matches] = txtRule(record);
  const candidates = answer.filter(relevant);
  if (candidates.some(matches)) return { status: "verified", found: null };
  if (candidates.length === 0) return { status: "missing", found: null };
  return { status: "mismatch", found: candidates.join(" | ") };
}

/** For a TXT record: which published texts are of its kind, and which of those say what it says. */
function txtRule(record: DomainRecordState): [(text: string) => boolean, (text: string) => boolean] {
  switch (record.purpose) {
    case "dkim": {
      const key = dkimTag(record.value, "p");
      return [(text) => dkimTag(text, "p") !== undefined, (text) => dkimTag(text, "p") === key];
    }
    case "spf": {
      // Verified when the published SPF record has every mechanism asked for (it may have more).
      const wanted = record.value.split(" ").slice(1, -1);
      const isSpf = (text: string) => /^v=spf1(\s|$)/i.test(text.trim());
      return [
        isSpf,
        (text) => {
          const terms = text.toLowerCase().split(/\s+/);
          return wanted.every((term) => terms.includes(term.toLowerCase()));
        },
      ];
    }
    default: {
      // Any DMARC policy the owner chose is theirs to choose: the suggestion is only a start.
      const isDmarc = (text: string) => /^v=DMARC1\s*(;|$)/i.test(text.trim());
      return [() => true, isDmarc];
    }
  }
}

/** A tag's value in a DKIM record (`p=` with the spaces DNS tools insert removed). */
function dkimTag(text: string, tag: string): string | undefined {
  for (const part of text.split(";")) {
    const at = part.indexOf("=");
    if (at > 0 && part.slice(0, at).trim().toLowerCase() === tag)
      return part.slice(at + 1).replace(/\s+/g, "");
  }
  return undefined;
}

function sameHost(a: string, b: string): boolean {
  return a.replace(/\.$/, "").toLowerCase() === b.replace(/\.$/, "").toLowerCase();
}

function failed(error: unknown): Check {
  if (isNoRecord(error)) return { status: "missing", found: null };
  const code = (error as { code?: unknown } | null)?.code;
  return {
    temporary: `temporary DNS failure (${typeof code === "string" ? code : "no answer"}); the record was not checked, Verify again later`,
  };
}
