import { isValidAddress, MAX_ADDRESS_LENGTH, MAX_LOCAL_PART_LENGTH } from "../domain/addresses.js";
import { ApiError, LifecycleNotificationCodes } from "../domain/errors.js";
import { newSid } from "../domain/ids.js";
import type { SecretBox } from "../domain/secret-box.js";
import { emailMessagesPath } from "../model/paths.js";
import type { AccountRow, MailStore } from "../store/types.js";

/** What an erasure did, as POST …/Email/Erasures answers it. */
export interface Erasure {
  sid: string;
  accountSid: string;
  /** The salted hash that replaced the address (HMAC-SHA256 with the installation's key, hex). */
  addressHash: string;
  /** Final messages whose address and content were erased. */
  messagesAffected: number;
  /** Messages to or from the address not final yet, left as they are (erase again once they are). */
  messagesPending: number;
  dateCreated: number;
}

/** Where an erased address points: a hash, in the shape of an address so every rendering stays valid. */
export const ERASED_DOMAIN = "erased.invalid";

/**
 * Erasure of one person's address (issue 16): from every final message of an account and of the
 * accounts below it, never another lineage's. The address becomes `<hash>@erased.invalid`, the same
 * for the same address (so counts and a future suppression list still match it) and not reversible
 * without the installation's key; the messages' content is purged with it.
 */
export class ErasureService {
  constructor(
    private readonly store: MailStore,
    private readonly secrets: SecretBox,
  ) {}

  async erase(account: AccountRow, rawAddress: string | undefined): Promise<Erasure> {
    if (rawAddress === undefined || rawAddress.trim() === "") {
      throw new ApiError(
        "ErasureAddressMissing",
        "Address can not be null: give the email address to erase.",
      );
    }
    const address = rawAddress.trim().toLowerCase();
    if (!isErasable(address)) {
      throw new ApiError(
        "InvalidErasureAddress",
        "Address must be one email address, such as person@example.com (no display name, no list).",
      );
    }
    const addressHash = this.secrets.saltedHash(address).slice(0, 32);
    const now = Date.now();
    const sid = newSid("ER", now);
    const accountSids = subtree(await this.store.listAccounts(), account.sid);
    const result = await this.store.eraseAddress({
      accountSids,
      address,
      replacement: `${addressHash}@${ERASED_DOMAIN}`,
      now,
      batch: 500,
      notification: {
        sid: newSid("NO", now),
        account_sid: account.sid,
        date_created: now,
        log: 1,
        error_code: LifecycleNotificationCodes.AddressErased,
        message_text: `Erasure ${sid}: address hash ${addressHash} erased from the messages of ${account.sid} and its sub-accounts.`,
        message_sid: null,
        request_url: `${emailMessagesPath(account.sid).replace(/Messages$/, "Erasures")}`,
        request_method: "POST",
        request_variables: null,
        response_headers: null,
        response_body: null,
      },
    });
    return {
      sid,
      accountSid: account.sid,
      addressHash,
      messagesAffected: result.affected,
      messagesPending: result.pending,
      dateCreated: now,
    };
  }
}

/**
 * One address as today's rules take it, or with a quoted local part (`"a b"@x.org`, RFC 5321's
 * Quoted-string: printable ASCII, `\\` before `"` or `\\`): Mailroom no longer accepts those in a
 * message, but messages stored before it did may hold them, and their person may ask too.
 */
function isErasable(address: string): boolean {
  if (isValidAddress(address)) return true;
  const at = address.lastIndexOf("@");
  const local = address.slice(0, at);
  return (
    at > 0 &&
    address.length <= MAX_ADDRESS_LENGTH &&
    local.length <= MAX_LOCAL_PART_LENGTH &&
    /^"(?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\[\x20-\x7e])*"$/.test(local) &&
    isValidAddress(`x${address.slice(at)}`)
  );
}

/** The account and every account below it. */
function subtree(accounts: readonly AccountRow[], rootSid: string): string[] {
  const children = new Map<string, string[]>();
  for (const account of accounts) {
    if (account.parent_sid === null) continue;
    children.set(account.parent_sid, [...(children.get(account.parent_sid) ?? []), account.sid]);
  }
  const found = [rootSid];
  for (let i = 0; i < found.length; i++) found.push(...(children.get(found[i] as string) ?? []));
  return found;
}
