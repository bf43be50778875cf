import { ApiError } from "../domain/errors.js";
import { quoteInput } from "../domain/quote.js";
import type { DomainDirectory } from "./domain-directory.js";

/** What the accept service asks before storing a message (MAILROOM_REQUIRE_VERIFIED_DOMAIN). */
export interface FromPolicy {
  /** Throws (400, 16010) when the From address may not be sent from; a promise only while reading domains. */
  check(accountSid: string, fromAddress: string): void | Promise<void>;
}

/**
 * MAILROOM_REQUIRE_VERIFIED_DOMAIN: a message is accepted only from a verified domain of the
 * account's lineage (or a subdomain of one). The answer comes from the DomainDirectory's cache:
 * no query per message.
 */
export function verifiedDomainPolicy(directory: DomainDirectory): FromPolicy {
  const refuse = (fromAddress: string) => {
    const domain = fromAddress.slice(fromAddress.lastIndexOf("@") + 1);
    throw new ApiError(
      "UnverifiedFromDomain",
      `From ${quoteInput(fromAddress)}: ${quoteInput(domain)} is not a verified sending domain of this account (this Mailroom requires one: MAILROOM_REQUIRE_VERIFIED_DOMAIN). Create it (POST …/Domains), publish its DNS records and Verify, or send from a verified domain.`,
    );
  };
  return {
    check(accountSid, fromAddress) {
      const verified = directory.isVerified(accountSid, fromAddress);
      if (verified instanceof Promise) {
        return verified.then((ok) => {
          if (!ok) refuse(fromAddress);
        });
      }
      if (!verified) refuse(fromAddress);
    },
  };
}
