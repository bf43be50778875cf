import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { MESSAGE_COLUMNS } from "../src/store/schema.js";
import {
  packAttemptRecord,
  packMessage,
  unpackAttemptRecord,
  unpackMessage,
} from "../src/store/wire-rows.js";
import { attemptRecord, emailRow } from "./helpers/store-rows.js";

/** A value as it reads after the crossing: fields left undefined are as good as absent. */
function defined(value: object): object {
  return JSON.parse(JSON.stringify(value)) as object;
}

describe("rows across the store thread's boundary (wire-rows.ts)", () => {
  test("a message comes back with every column the store writes", () => {
    // A distinct value in every column, so a field read from the wrong place cannot pass.
    const row = emailRow("AC1", {
      ...Object.fromEntries(MESSAGE_COLUMNS.map((column, i) => [column.name, `${column.name}-${i}`])),
    });
    assert.deepEqual(unpackMessage(structuredClone(packMessage(row))), row);
    const plain = emailRow("AC1", { html_part: null, send_at: null, status_callback: null });
    assert.deepEqual(defined(unpackMessage(structuredClone(packMessage(plain)))), defined(plain));
  });

  test("an attempt record comes back whole, with and without its optional fields", () => {
    const full = attemptRecord(
      "AC1",
      "EM1",
      { hasStatusCallback: false, mime: "MIME", retryAt: 7, errorCode: 1, errorMessage: "m" },
      { smtp_code: 451, response: "later", error_code: 2, error_message: "e", recipients: "[]" },
    );
    assert.deepEqual(unpackAttemptRecord(structuredClone(packAttemptRecord(full))), full);
    const bare = attemptRecord("AC1", "EM1");
    assert.deepEqual(defined(unpackAttemptRecord(structuredClone(packAttemptRecord(bare)))), defined(bare));
    assert.equal(unpackAttemptRecord(packAttemptRecord(bare)).hasStatusCallback, undefined);
  });
});
