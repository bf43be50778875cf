import assert from "node:assert/strict";

/**
 * RFC 2047 decoding of an unstructured value (mailparser leaves custom headers encoded): encoded
 * words in UTF-8, the whitespace between two adjacent ones dropped.
 */
export function decodeWords(value: string): string {
  const word = /=\?([^?]+)\?([QqBb])\?([^?]*)\?=/g;
  return value
    .replace(/(\?=)\s+(?==\?)/g, "$1")
    .replace(word, (_, charset: string, kind: string, text: string) => {
      assert.equal(charset.toLowerCase(), "utf-8");
      const bytes =
        kind.toUpperCase() === "B"
          ? Buffer.from(text, "base64")
          : Buffer.from(
              text
                .replace(/_/g, " ")
                .replace(/=([0-9A-F]{2})/gi, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16))),
              "latin1",
            );
      return bytes.toString("utf8");
    });
}
