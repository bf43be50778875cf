/** Where a value sits in a JSON document: keys and array indexes from the top. */
export type JsonPath = Array<string | number>;

/** A key given twice in one object, and the path of that object. */
export interface DuplicateKey {
  key: string;
  object: JsonPath;
}

/**
 * The first key given twice in one object of `text`, at any depth, or undefined. JSON.parse keeps the
 * last of two equal keys without a word (`{"From":"a@x","From":"evil@y"}` sends from evil@y), so the
 * body is scanned once more, for its keys only. `text` must be JSON that JSON.parse accepted: the scan
 * trusts its structure. Each string is skipped with one indexOf (a 10 MB attachment in base64 is one
 * native search, not 10 million steps of JavaScript), and a key is decoded only when it holds an
 * escape (`"\u0046rom"` is `From`). Written by hand: jsonc-parser's visitor (the maintained scanner
 * that reports every key) took 6.8 µs on a 1 KB body, six times JSON.parse, and 35 ms on a 10 MB one;
 * this takes 0.5 µs and 0.4 ms (docs/performance.md, `npm run bench:input`).
 */
export function findDuplicateKey(text: string): DuplicateKey | undefined {
  const result = scan(text);
  return "duplicate" in result ? result.duplicate : undefined;
}

/**
 * Where a prefix of a JSON document stops: inside the string of a key (`inKey`) or of a value at
 * `path`, or outside any string (`inString` false). For naming what held a byte that is not UTF-8.
 */
export function whereJsonStops(prefix: string): { path: JsonPath; inKey: boolean; inString: boolean } {
  const result = scan(prefix);
  return "stop" in result ? result.stop : { path: [], inKey: false, inString: false };
}

interface Frame {
  /** The keys seen so far in an object; null in an array. */
  keys: Set<string> | null;
  /** The key or index being read. */
  at: string | number;
}

type ScanResult =
  | { duplicate: DuplicateKey }
  | { stop: { path: JsonPath; inKey: boolean; inString: boolean } };

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;

function scan(text: string): ScanResult {
  const frames: Frame[] = [];
  let expectKey = false;
  let i = 0;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      const end = closingQuote(text, i);
      if (end < 0) return { stop: { path: frames.map((f) => f.at), inKey: expectKey, inString: true } };
      const frame = frames[frames.length - 1];
      if (expectKey && frame?.keys) {
        const raw = text.slice(i + 1, end);
        const key = raw.includes("\\") ? (JSON.parse(text.slice(i, end + 1)) as string) : raw;
        if (frame.keys.has(key)) return { duplicate: { key, object: frames.slice(0, -1).map((f) => f.at) } };
        frame.keys.add(key);
        frame.at = key;
        expectKey = false;
      }
      i = end + 1;
      continue;
    }
    if (c === OPEN_OBJECT) {
      frames.push({ keys: new Set(), at: "" });
      expectKey = true;
    } else if (c === OPEN_ARRAY) {
      frames.push({ keys: null, at: 0 });
      expectKey = false;
    } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
      frames.pop();
      expectKey = false;
    } else if (c === COMMA) {
      const frame = frames[frames.length - 1];
      if (frame?.keys) expectKey = true;
      else if (frame) frame.at = (frame.at as number) + 1;
    }
    i++;
  }
  return { stop: { path: frames.map((f) => f.at), inKey: false, inString: false } };
}

/** The index of the quote that closes the string opened at `open`, or -1 when the text ends first. */
function closingQuote(text: string, open: number): number {
  let end = text.indexOf('"', open + 1);
  while (end > 0 && escaped(text, end)) end = text.indexOf('"', end + 1);
  return end;
}

/** True when an odd number of backslashes stands before `at`. */
function escaped(text: string, at: number): boolean {
  let count = 0;
  while (text.charCodeAt(at - 1 - count) === BACKSLASH) count++;
  return count % 2 === 1;
}
