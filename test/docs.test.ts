import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { SETTINGS } from "../src/config/config.js";

const repoFile = (path: string) => readFile(fileURLToPath(new URL(`../../${path}`, import.meta.url)), "utf8");

test("the README's configuration table lists every setting with its flag", async () => {
  const readme = await repoFile("README.md");
  for (const s of SETTINGS) {
    const row = readme.split("\n").find((line) => line.startsWith(`| \`${s.env}\` |`));
    assert.ok(row, `README.md has no row for ${s.env}`);
    assert.ok(row.includes(`\`${s.flag}\``), `README.md's row for ${s.env} names ${s.flag}`);
  }
});

test("the README's commands are the ones CI runs", async () => {
  const readme = await repoFile("README.md");
  const ci = await repoFile(".ci/run");
  assert.match(readme, /npm ci && npm start/);
  assert.match(readme, /npm test/);
  assert.match(ci, /^npm ci$/m);
  assert.match(ci, /^npm test$/m);
});

test("every locked package runs on the Node.js the README promises (20), so npm ci prints no EBADENGINE", async () => {
  const readme = await repoFile("README.md");
  const promised = Number(/You need Node\.js (\d+) or newer/.exec(readme)?.[1]);
  assert.equal(promised, 20);
  const lock = JSON.parse(await repoFile("package-lock.json")) as {
    packages: Record<string, { version?: string; engines?: { node?: string } }>;
  };
  const tooNew: string[] = [];
  for (const [path, info] of Object.entries(lock.packages)) {
    // The common forms: ">=22", ">= 22.0.0", "^22", "22.x" (the first number is the oldest Node it takes).
    const oldest = /^\s*(?:>=|\^|~)?\s*v?(\d+)/.exec(info.engines?.node ?? "")?.[1];
    if (oldest !== undefined && !(info.engines?.node ?? "").includes("||") && Number(oldest) > promised) {
      tooNew.push(`${path}@${info.version}: node ${info.engines?.node}`);
    }
  }
  assert.deepEqual(tooNew, []);
});
