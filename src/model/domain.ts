import Type from "typebox";
import type { DkimAlgorithm, DkimKeyState, StoredDkimKey } from "../domains/dkim-keys.js";
import type { DomainRecordState } from "../domains/dns-records.js";
import { rfc2822 } from "../http/dates.js";
import type { DomainRow } from "../store/domain-queries.js";
import { API_BASE } from "./paths.js";
import { field, ResourceModel, Schemas } from "./resource.js";

export function domainsPath(accountSid: string): string {
  return `${API_BASE}/Accounts/${accountSid}/Domains`;
}

export function domainPath(accountSid: string, sid: string): string {
  return `${domainsPath(accountSid)}/${sid}`;
}

/** `POST /Accounts/{AccountSid}/Domains`. */
export const CreateDomainParams = Type.Object(
  {
    DomainName: Type.String({
      description:
        "The domain mail is sent from, e.g. example.com (internationalised names are stored in punycode).",
    }),
    DkimAlgorithms: Type.Optional(
      Type.String({
        description:
          "rsa (default: one RSA-2048 key) or rsa,ed25519 (a second, Ed25519 signature on every message).",
      }),
    ),
  },
  { additionalProperties: false },
);

/** A domain as shown: its row, with the JSON columns read. */
export interface DomainView {
  row: DomainRow;
  records: DomainRecordState[];
  keys: StoredDkimKey[];
}

export function domainView(row: DomainRow): DomainView {
  return {
    row,
    records: JSON.parse(row.dns_records) as DomainRecordState[],
    keys: JSON.parse(row.dkim_keys) as StoredDkimKey[],
  };
}

const RecordSchema = Type.Object({
  type: Type.String({ description: "TXT or MX." }),
  name: Type.String({ description: "The record's name (fully qualified)." }),
  value: Type.String({ description: "What to publish (MX: preference and host)." }),
  purpose: Type.String({ description: "dkim, spf, dmarc or bounce." }),
  status: Type.String({ description: "verified, missing or mismatch, as of the last check." }),
  selector: Type.Optional(Type.String({ description: "The DKIM key's selector (dkim records)." })),
  found: Type.Optional(Type.String({ description: "What is published instead (mismatch)." })),
  error: Type.Optional(
    Type.String({ description: "A temporary DNS failure at the last check (status is from before it)." }),
  ),
});

const KeySchema = Type.Object({
  selector: Type.String(),
  algorithm: Type.String({ description: "rsa (2048 bits) or ed25519." }),
  state: Type.String({
    description:
      "active (signs), pending (a rotation's new key: signs once its record verifies) or previous (replaced; retire it once receivers no longer need it).",
  }),
  date_created: Type.String(),
});

export const DomainModel = new ResourceModel<DomainView>(
  "Domain",
  [
    field("sid", Schemas.text, "DM + 32 hex digits.", ({ row }) => row.sid),
    field("account_sid", Schemas.text, "The account that owns it.", ({ row }) => row.account_sid),
    field("domain_name", Schemas.text, "The domain (punycode).", ({ row }) => row.domain_name),
    field(
      "status",
      Schemas.text,
      "pending (its DKIM record has not verified yet), verified, or failed (it was verified and its DKIM record is gone or changed).",
      ({ row }) => row.status,
    ),
    field(
      "dns_records",
      Type.Array(RecordSchema),
      "The records to publish, each with the result of the last check.",
      ({ records }) =>
        records.map((r) => {
          const shown: Record<string, string> = {
            type: r.type,
            name: r.name,
            value: r.value,
            purpose: r.purpose,
            status: r.status,
          };
          // Absent rather than null: the same in JSON and XML, as top-level fields are.
          if (r.selector !== undefined) shown.selector = r.selector;
          if (r.found !== null) shown.found = r.found;
          if (r.error !== null) shown.error = r.error;
          return shown;
        }),
    ),
    field("dkim_keys", Type.Array(KeySchema), "Its DKIM keys (private keys are never shown).", ({ keys }) =>
      keys.map((k) => ({
        selector: k.selector,
        algorithm: k.algorithm as DkimAlgorithm,
        state: k.state as DkimKeyState,
        date_created: rfc2822(k.created),
      })),
    ),
    field("date_checked", Schemas.rfc2822, "When its records were last looked up.", ({ row }) =>
      row.date_checked === null ? null : rfc2822(row.date_checked),
    ),
    field("date_created", Schemas.rfc2822, "When it was created.", ({ row }) => rfc2822(row.date_created)),
    field("date_updated", Schemas.rfc2822, "When it last changed.", ({ row }) => rfc2822(row.date_updated)),
    field("uri", Schemas.text, "This resource.", ({ row }) => `${domainPath(row.account_sid, row.sid)}.json`),
  ],
  "A sending domain: its DKIM keys and the DNS records to publish (docs/domains.md).",
);
