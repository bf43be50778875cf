import type { Config } from "../config/config.js";
import { ApiError } from "../domain/errors.js";
import { toJsonObject } from "../http/representation.js";
import { AccountModel } from "../model/account.js";
import { AccountService } from "../services/accounts.js";
import { openStore } from "../store/open-store.js";

export interface CreateAccountOptions {
  email: string;
  password: string | undefined;
  friendlyName: string | undefined;
  role: string | undefined;
  parent: string | undefined;
}

/** `mailroom accounts create`: writes straight to the store, so it works with or without a running server. */
export async function runAccountsCreate(config: Config, options: CreateAccountOptions): Promise<void> {
  const store = openStore(config);
  try {
    await store.migrate();
    const accounts = new AccountService(store);
    if (options.parent !== undefined && !(await store.findAccountBySid(options.parent))) {
      throw new ApiError("AccountNotFound", `--parent ${options.parent}: no such account.`);
    }
    const issued = await accounts.create({
      emailAddress: options.email,
      password: options.password,
      friendlyName: options.friendlyName,
      role: options.role,
      parentSid: options.parent ?? null,
    });
    const json = toJsonObject(AccountModel.render(issued).fields);
    process.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
  } finally {
    await store.close();
  }
}
