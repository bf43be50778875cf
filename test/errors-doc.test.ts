import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { DeliveryErrorCodes, DomainCheckCodes, ErrorCodes, WebhookErrorCodes } from "../src/domain/errors.js";

test("every error code has a line in docs/errors.md with its HTTP status", async () => {
  const doc = await readFile(fileURLToPath(new URL("../../docs/errors.md", import.meta.url)), "utf8");
  for (const [kind, { code, status }] of Object.entries(ErrorCodes)) {
    const line = doc.split("\n").find((l) => l.startsWith(`| <a id="${code}"></a>${code} |`));
    assert.ok(line, `docs/errors.md has no line for ${code} (${kind})`);
    assert.ok(line.includes(`| ${status} |`), `docs/errors.md gives ${code} the wrong HTTP status`);
  }
});

test("every delivery error code has a line in docs/errors.md", async () => {
  const doc = await readFile(fileURLToPath(new URL("../../docs/errors.md", import.meta.url)), "utf8");
  for (const [kind, code] of Object.entries(DeliveryErrorCodes)) {
    assert.ok(
      doc.includes(`| <a id="${code}"></a>${code} | — |`),
      `docs/errors.md has no line for ${code} (${kind})`,
    );
  }
});

test("every webhook delivery code has a line in docs/errors.md", async () => {
  const doc = await readFile(fileURLToPath(new URL("../../docs/errors.md", import.meta.url)), "utf8");
  for (const [kind, code] of Object.entries(WebhookErrorCodes)) {
    assert.ok(
      doc.includes(`| <a id="${code}"></a>${code} | — |`),
      `docs/errors.md has no line for ${code} (${kind})`,
    );
  }
});

test("every domain re-check code has a line in docs/errors.md", async () => {
  const doc = await readFile(fileURLToPath(new URL("../../docs/errors.md", import.meta.url)), "utf8");
  for (const [kind, code] of Object.entries(DomainCheckCodes)) {
    assert.ok(
      doc.includes(`| <a id="${code}"></a>${code} | — |`),
      `docs/errors.md has no line for ${code} (${kind})`,
    );
  }
});
