#!/usr/bin/env node
import { Command, CommanderError, Option } from "commander";
import { type Config, ConfigError, loadConfig, SETTINGS } from "../config/config.js";
import { ApiError } from "../domain/errors.js";
import type { AccountUpdateInput } from "../services/accounts.js";
import { runAccountsCreate, runAccountsList, runAccountsUpdate } from "./accounts.js";
import { runPurge } from "./purge.js";
import { runServe } from "./serve.js";

type Overrides = Partial<Record<keyof Config, string>>;

/** Adds one flag per setting, with its environment variable and default in the help text. */
function addSettingFlags(command: Command, keys: ReadonlyArray<keyof Config>): Command {
  for (const s of SETTINGS) {
    if (!keys.includes(s.key)) continue;
    command.addOption(
      new Option(`${s.flag} <value>`, `${s.description} [env ${s.env}, default ${s.defaultText}]`),
    );
  }
  return command;
}

/** Commander names options in camelCase after the flag; map them back to config keys. */
function overridesFrom(options: Record<string, unknown>): Overrides {
  const overrides: Overrides = {};
  for (const s of SETTINGS) {
    const optionName = s.flag.slice(2).replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
    const value = options[optionName];
    if (typeof value === "string") overrides[s.key] = value;
  }
  return overrides;
}

const STORE_KEYS: Array<keyof Config> = ["dataDir", "databaseUrl", "databasePoolSize", "logLevel"];

/** The argument naming the account a command changes. */
const ACCOUNT_ARGUMENT = ["<account>", "the account's SID or email address"] as const;

function buildProgram(): Command {
  const program = new Command()
    .name("mailroom")
    .description(
      "Self-hosted email API server: the Restcomm Email API, stored durably, delivered over SMTP, retried and tracked.",
    )
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride();

  addSettingFlags(
    program
      .command("serve")
      .description(
        "Run the HTTP API and the delivery workers. Every setting can also come from its MAILROOM_* environment variable; flags win.",
      ),
    SETTINGS.map((s) => s.key),
  ).action(async (options: Record<string, unknown>) => {
    await runServe(loadConfig(process.env, overridesFrom(options)));
  });

  const accounts = program
    .command("accounts")
    .description("Manage accounts directly in the store (works while the server runs)");
  addSettingFlags(
    accounts
      .command("create")
      .description("Create an account and print it as JSON, including its AuthToken (shown only this once)")
      .requiredOption("--email <address>", "the account's email address (also usable as the API user name)")
      .option("--password <password>", "a password for the account (at least 8 characters)")
      .option("--friendly-name <name>", "a display name (default: the email address)")
      .option("--role <role>", "the account's role (default: Developer)")
      .option("--parent <sid>", "make it a sub-account of this account SID"),
    STORE_KEYS,
  ).action(async (options: Record<string, unknown>) => {
    const config = loadConfig(process.env, overridesFrom(options));
    await runAccountsCreate(config, {
      email: options.email as string,
      password: options.password as string | undefined,
      friendlyName: options.friendlyName as string | undefined,
      role: options.role as string | undefined,
      parent: options.parent as string | undefined,
    });
  });

  addSettingFlags(
    accounts
      .command("list")
      .description("Print every account as JSON, oldest first (never an AuthToken)")
      .option("--parent <account>", "only the direct sub-accounts of this account (SID or email)"),
    STORE_KEYS,
  ).action(async (options: Record<string, unknown>) => {
    await runAccountsList(
      loadConfig(process.env, overridesFrom(options)),
      options.parent as string | undefined,
    );
  });

  addSettingFlags(
    accounts
      .command("update")
      .description("Change an account (any account, top-level ones included) and print it as JSON")
      .argument(...ACCOUNT_ARGUMENT)
      .option("--friendly-name <name>", "a new display name")
      .option("--password <password>", "a new password (8 characters to 1 KiB)")
      .option(
        "--status <status>",
        "active, suspended, uninitialized or closed (final; closes every sub-account)",
      )
      .option("--role <role>", "a new role; Administrator manages every account through the API")
      .option(
        "--account-content-retention <duration>",
        "the account's ContentRetention (30d, 12h, 90s; at most its parent's; empty inherits)",
      )
      .option(
        "--account-metadata-retention <duration>",
        "the account's MetadataRetention (at most its parent's, at least its content retention; empty inherits)",
      ),
    STORE_KEYS,
  ).action(async (account: string, options: Record<string, unknown>) => {
    await runAccountsUpdate(loadConfig(process.env, overridesFrom(options)), account, {
      friendlyName: options.friendlyName as string | undefined,
      password: options.password as string | undefined,
      status: options.status as string | undefined,
      role: options.role as string | undefined,
      contentRetention: options.accountContentRetention as string | undefined,
      metadataRetention: options.accountMetadataRetention as string | undefined,
    });
  });

  const oneChange = (name: string, description: string, input: AccountUpdateInput) =>
    addSettingFlags(
      accounts
        .command(name)
        .description(description)
        .argument(...ACCOUNT_ARGUMENT),
      STORE_KEYS,
    ).action(async (account: string, options: Record<string, unknown>) => {
      await runAccountsUpdate(loadConfig(process.env, overridesFrom(options)), account, input);
    });
  oneChange(
    "suspend",
    "Suspend an account: it and every account below it get 403 until it is active again (update --status active)",
    { status: "suspended" },
  );
  oneChange("close", "Close an account and every account below it, for good", { status: "closed" });
  oneChange(
    "rotate-token",
    "Issue a new AuthToken (printed once, in the JSON) and retire the old one at once",
    { rotateAuthToken: true },
  );
  addSettingFlags(
    program
      .command("purge")
      .description(
        "Run one purge pass now (messages past MAILROOM_CONTENT_RETENTION / MAILROOM_METADATA_RETENTION, and accounts' own) and print what it did as JSON",
      )
      .option("--dry-run", "only count what a pass would purge now, per kind; change nothing"),
    [...STORE_KEYS, "contentRetentionMs", "metadataRetentionMs"],
  ).action(async (options: Record<string, unknown>) => {
    await runPurge(loadConfig(process.env, overridesFrom(options)), { dryRun: options.dryRun === true });
  });
  return program;
}

async function main(): Promise<void> {
  const program = buildProgram();
  if (process.argv.length <= 2) {
    // No command at all: say what there is rather than nothing.
    program.outputHelp({ error: true });
    process.exitCode = 1;
    return;
  }
  try {
    await program.parseAsync(process.argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      process.exitCode = error.exitCode;
      return;
    }
    if (error instanceof ConfigError || error instanceof ApiError) {
      process.stderr.write(`mailroom: ${error.message}\n`);
      process.exitCode = 2;
      return;
    }
    process.stderr.write(`mailroom: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  }
}

await main();
