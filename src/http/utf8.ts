import { ApiError } from "../domain/errors.js";
import { quoteInput } from "../domain/quote.js";

/**
 * Where `bytes` stop being UTF-8: the offset of the first byte that does not start (or continue) a
 * well-formed sequence (Unicode 15, table 3-7: no overlongs, no surrogates, nothing past U+10FFFF),
 * or -1. Only for saying where a body went wrong: whether it did is node:buffer's isUtf8 (simdutf), fast.
 */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  let at = 0;
  while (at < bytes.length) {
    const lead = bytes[at] as number;
    if (lead < 0x80) {
      at++;
      continue;
    }
    let length: number;
    let low = 0x80;
    let high = 0xbf;
    if (lead >= 0xc2 && lead <= 0xdf) length = 2;
    else if (lead >= 0xe0 && lead <= 0xef) {
      length = 3;
      if (lead === 0xe0) low = 0xa0;
      if (lead === 0xed) high = 0x9f;
    } else if (lead >= 0xf0 && lead <= 0xf4) {
      length = 4;
      if (lead === 0xf0) low = 0x90;
      if (lead === 0xf4) high = 0x8f;
    } else return at;
    for (let i = 1; i < length; i++) {
      const next = bytes[at + i];
      const min = i === 1 ? low : 0x80;
      const max = i === 1 ? high : 0xbf;
      if (next === undefined || next < min || next > max) return at;
    }
    at += length;
  }
  return -1;
}

/** A parameter as an error names it: `Subject` as it is, anything odd quoted (and cut short). */
export function parameterLabel(name: string): string {
  return /^[A-Za-z][A-Za-z0-9]{0,63}$/.test(name) ? name : `The parameter ${quoteInput(name)}`;
}

/** The error for text that is not UTF-8: `what` names the parameter, `detail` says where. */
export function notUtf8(what: string, detail: string): ApiError {
  return new ApiError(
    "InvalidEncoding",
    `${what} is not valid UTF-8 (${detail}); send text as UTF-8: Mailroom does not guess another encoding, nor replace what it cannot read.`,
  );
}

/** `byte 0xE9 at offset 12`: where a body's bytes stop being UTF-8. */
export function badByte(bytes: Uint8Array, offset: number): string {
  return `byte 0x${(bytes[offset] ?? 0).toString(16).toUpperCase().padStart(2, "0")} at offset ${offset} of the body`;
}
