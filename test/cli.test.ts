import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { type AddressInfo, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { CLI, runCli, startServeProcess } from "./helpers/cli.js";
import { API, request, sendEmail } from "./helpers/mailroom.js";
import { waitFor } from "./helpers/wait.js";

const execFileAsync = promisify(execFile);

describe("mailroom command line", () => {
  let dataDir: string;
  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "mailroom-cli-"));
  });
  after(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  test("npm start caps the young generation with a flag this node accepts", async () => {
    const pkg = JSON.parse(await readFile(new URL("../../package.json", import.meta.url), "utf8"));
    const start = /^node (--max-semi-space-size=\d+) dist\/src\/cli\/main\.js serve$/.exec(pkg.scripts.start);
    assert.ok(start, `npm start: ${pkg.scripts.start} (docs/performance.md, "memory caps")`);
    const { stdout } = await execFileAsync(process.execPath, [start[1] as string, CLI, "--help"]);
    assert.match(stdout, /Usage: mailroom/);
    const firstLine = (await readFile(CLI, "utf8")).split("\n", 1)[0];
    assert.equal(firstLine, "#!/usr/bin/env node", "a first line every env understands (no -S)");
  });

  test("--help explains every command and setting", async () => {
    const bare = await runCli([]);
    assert.equal(bare.code, 1);
    assert.match(bare.stderr, /Usage: mailroom/, "no command prints the usage");
    const top = await runCli(["--help"]);
    assert.equal(top.code, 0);
    assert.match(top.stdout, /serve/);
    assert.match(top.stdout, /accounts/);
    const serve = await runCli(["serve", "--help"]);
    assert.equal(serve.code, 0);
    for (const text of [
      "--port",
      "MAILROOM_PORT",
      "--smtp-url",
      "MAILROOM_SMTP_URL",
      "MAILROOM_DATABASE_URL",
    ]) {
      assert.ok(serve.stdout.includes(text), `serve --help mentions ${text}`);
    }
    const create = await runCli(["accounts", "create", "--help"]);
    assert.match(create.stdout, /--email/);
    assert.match(create.stdout, /--parent/);
  });

  test("a bad flag or setting stops with a clear message and a non-zero exit", async () => {
    const unknown = await runCli(["serve", "--bogus"]);
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.stderr, /unknown option '--bogus'/);
    const badPort = await runCli(["serve"], { MAILROOM_PORT: "eighty", MAILROOM_DATA_DIR: dataDir });
    assert.equal(badPort.code, 2);
    assert.match(badPort.stderr, /MAILROOM_PORT must be a whole number, got "eighty"/);
    const badFlag = await runCli(["serve", "--smtp-url", "http://relay"], { MAILROOM_DATA_DIR: dataDir });
    assert.equal(badFlag.code, 2);
    assert.match(badFlag.stderr, /--smtp-url must start with smtp:\/\/ or smtps:\/\//);
    const secret = await runCli(["serve"], {
      MAILROOM_SMTP_URL: "ftp://user:hunter2@relay",
      MAILROOM_DATA_DIR: dataDir,
    });
    assert.equal(secret.code, 2);
    assert.doesNotMatch(secret.stderr, /hunter2/, "a URL's password is never echoed");
  });

  test("accounts create prints the account with its AuthToken; a duplicate is refused", async () => {
    const env = { MAILROOM_DATA_DIR: join(dataDir, "create") };
    const created = await runCli(
      ["accounts", "create", "--email", "cli@example.org", "--friendly-name", "CLI"],
      env,
    );
    assert.equal(created.code, 0, created.stderr);
    const account = JSON.parse(created.stdout);
    assert.match(account.sid, /^AC[0-9a-f]{32}$/);
    assert.match(account.auth_token, /^[0-9a-f]{32}$/);
    assert.equal(account.friendly_name, "CLI");
    const sub = await runCli(
      ["accounts", "create", "--email", "sub@example.org", "--parent", account.sid],
      env,
    );
    assert.equal(JSON.parse(sub.stdout).parent_sid, account.sid);
    const dup = await runCli(["accounts", "create", "--email", "CLI@example.org"], env);
    assert.equal(dup.code, 2);
    assert.match(dup.stderr, /already exists/);
    const noParent = await runCli(
      ["accounts", "create", "--email", "orphan@example.org", "--parent", "ACnope"],
      env,
    );
    assert.equal(noParent.code, 2);
    assert.match(noParent.stderr, /no such account/);
  });

  test("serve: first start prints the Administrator's credentials once; accounts create works while it runs; SIGTERM stops it cleanly", async () => {
    const env = { MAILROOM_DATA_DIR: join(dataDir, "serve") };
    const server = await startServeProcess(env);
    try {
      const sid = /AccountSid: (AC[0-9a-f]{32})/.exec(server.output())?.[1];
      const token = /AuthToken: +([0-9a-f]{32})/.exec(server.output())?.[1];
      assert.ok(sid && token, server.output());
      assert.ok(server.output().includes(`curl -X POST ${server.url}${API}/Accounts/${sid}/Email/Messages`));
      const logLines = server
        .output()
        .split("\n")
        .filter((line) => line.startsWith("{"));
      assert.ok(
        logLines.every((line) => !line.includes(token)),
        "the AuthToken is never logged",
      );
      assert.equal((await sendEmail(server, { sid, token })).status, 200);

      const created = await runCli(["accounts", "create", "--email", "live@example.org"], env);
      assert.equal(created.code, 0, created.stderr);
      const live = JSON.parse(created.stdout);
      const sent = await sendEmail(server, { sid: live.sid, token: live.auth_token });
      assert.equal(
        sent.status,
        200,
        "an account created by the CLI works at once against the running server",
      );

      server.child.kill("SIGTERM");
      assert.equal(await server.exited, 0);
    } finally {
      server.child.kill("SIGKILL");
    }

    const again = await startServeProcess(env);
    try {
      assert.doesNotMatch(again.output(), /AuthToken:/, "credentials are printed only on the first start");
      const ready = await request(again, "GET", "/readyz");
      assert.equal(ready.status, 200);
    } finally {
      again.child.kill("SIGTERM");
      await again.exited;
    }
  });

  test("serve keeps running when its stdout is closed (| head), and still stops cleanly", async () => {
    const port = await freePort();
    const child = spawn(process.execPath, [CLI, "serve"], {
      env: { ...process.env, MAILROOM_DATA_DIR: join(dataDir, "closed-stdout"), MAILROOM_PORT: String(port) },
      stdio: ["ignore", "pipe", "ignore"],
    });
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    // Like `| head -0`: the reader goes away before the first-start banner is printed.
    child.stdout?.destroy();
    try {
      await waitFor("the server to answer /readyz", async () => {
        const response = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined);
        return response?.status === 200;
      });
      child.kill("SIGTERM");
      assert.equal(await exited, 0);
    } finally {
      child.kill("SIGKILL");
    }
  });

  test("a start that fails (port taken) creates no account; the next start prints the credentials", async () => {
    const env = { MAILROOM_DATA_DIR: join(dataDir, "port-taken") };
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const { port } = blocker.address() as AddressInfo;
    try {
      const failed = await runCli(["serve"], { ...env, MAILROOM_PORT: String(port) });
      assert.notEqual(failed.code, 0);
      assert.match(failed.stderr, /EADDRINUSE|address already in use/);
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
    const server = await startServeProcess(env);
    try {
      assert.match(server.output(), /AuthToken: +[0-9a-f]{32}/);
    } finally {
      server.child.kill("SIGTERM");
      await server.exited;
    }
  });
});

/** A port that was free a moment ago (for the one test that cannot read the bound port from stdout). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
