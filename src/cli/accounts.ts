import type { Config } from "../config/config.js";
import { ApiError } from "../domain/errors.js";
import { toJsonObject } from "../http/representation.js";
import { AccountModel, type AccountSource } from "../model/account.js";
import { AccountService, type AccountUpdateInput } from "../services/accounts.js";
import { openStore } from "../store/open-store.js";
import type { AccountRow } from "../store/types.js";

/**
 * The `mailroom accounts` commands: the operator's hands on every account. They write straight to the
 * store, so they work with or without a running server (SQLite's WAL lets a second process write
 * beside it; PostgreSQL is shared anyway). A running server sees a change within a second (the
 * authentication cache's lifetime, AUTH_CACHE_MS).
 */
export interface CreateAccountOptions {
  email: string;
  password: string | undefined;
  friendlyName: string | undefined;
  role: string | undefined;
  parent: string | undefined;
}

export async function runAccountsCreate(config: Config, options: CreateAccountOptions): Promise<void> {
  await withAccounts(config, async (accounts) => {
    const issued = await accounts.create({
      emailAddress: options.email,
      password: options.password,
      friendlyName: options.friendlyName,
      role: options.role,
      parentSid: options.parent ?? null,
    });
    print(issued);
  });
}

/** `accounts list`: every account (or the direct sub-accounts of `--parent`), oldest first, as JSON. */
export async function runAccountsList(config: Config, parent: string | undefined): Promise<void> {
  await withAccounts(config, async (accounts) => {
    const rows =
      parent === undefined
        ? await accounts.listAll()
        : await accounts.listChildren((await findAccount(accounts, parent)).sid);
    process.stdout.write(
      `${JSON.stringify(
        rows.map((account) => render({ account })),
        null,
        2,
      )}\n`,
    );
  });
}

/** `accounts update|suspend|close|rotate-token`: one change to one account, printed as JSON after it. */
export async function runAccountsUpdate(
  config: Config,
  target: string,
  input: AccountUpdateInput,
): Promise<void> {
  await withAccounts(config, async (accounts) => {
    const account = await findAccount(accounts, target);
    // Its ancestors cap a retention change, and give the effective values printed.
    const ancestors = (await accounts.lookup(account.sid))?.ancestors ?? [];
    const updated = await accounts.update("operator", account, { ...input, ancestors });
    print({ ...updated, retention: accounts.retentionOf([updated.account, ...ancestors]) });
  });
}

async function withAccounts(
  config: Config,
  work: (accounts: AccountService) => Promise<void>,
): Promise<void> {
  const store = openStore(config);
  try {
    await store.migrate();
    await work(
      new AccountService(store, {
        maxSubAccounts: config.maxSubAccounts,
        retention: { contentMs: config.contentRetentionMs, metadataMs: config.metadataRetentionMs },
      }),
    );
  } finally {
    await store.close();
  }
}

async function findAccount(accounts: AccountService, sidOrEmail: string): Promise<AccountRow> {
  const account = await accounts.find(sidOrEmail);
  if (!account) throw new ApiError("AccountNotFound", `Account ${sidOrEmail}: no such account.`);
  return account;
}

function render(source: AccountSource) {
  return toJsonObject(AccountModel.render(source).fields);
}

/** The account as the API shows it; with its AuthToken only when one was just issued (shown this once). */
function print(source: AccountSource): void {
  process.stdout.write(`${JSON.stringify(render(source), null, 2)}\n`);
}
