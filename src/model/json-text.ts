/**
 * JSON text written piece by piece, exactly as JSON.stringify writes the same values: Node 20's
 * JSON.stringify checks a string character by character for what needs escaping (about 25
 * instructions a character), where a regular expression scans it natively and text that needs no
 * escape is used as it is. Pieces are joined with `+` (template literals): for a few dozen short
 * pieces that is about half of what an array and its join cost (callgrind). Apart from resource.ts so
 * that the relay thread's modules (stored-content.ts) can use it without loading TypeBox.
 */

/** What JSON.stringify escapes: quote, backslash, controls, and (well-formed JSON.stringify) lone surrogates. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/** A string as JSON text, exactly as JSON.stringify writes it (one that needs escaping goes to it). */
export function jsonString(text: string): string {
  return NEEDS_ESCAPE.test(text) ? JSON.stringify(text) : `"${text}"`;
}

/** What JSON.stringify writes between the quotes of a string: for a template literal that has them. */
export function jsonEscaped(text: string): string {
  return NEEDS_ESCAPE.test(text) ? JSON.stringify(text).slice(1, -1) : text;
}

/** A string or null as JSON text. */
export function jsonNullableString(text: string | null): string {
  return text === null ? "null" : jsonString(text);
}

/**
 * An object of scalars (custom headers, tags, an attachment reference) as JSON.stringify writes it:
 * keys in Object.keys's order, undefined left out, each string through jsonString. An object holding
 * anything else goes to JSON.stringify whole.
 */
export function flatObjectText(record: object): string {
  let text = "{";
  let separator = "";
  for (const key of Object.keys(record)) {
    const value: unknown = (record as Record<string, unknown>)[key];
    if (value === undefined) continue;
    const written = scalarText(value);
    if (written === undefined) return JSON.stringify(record);
    text += `${separator}${jsonString(key)}:${written}`;
    separator = ",";
  }
  return `${text}}`;
}

/** A list of plain objects of scalars (attachment references, an attempt's recipients), as JSON.stringify writes it. */
export function flatListText(list: readonly object[]): string {
  return listText(list, flatItemText);
}

/** An item of flatListText: anything but an object (a list read back from the store could hold one) goes to JSON.stringify. */
function flatItemText(item: unknown): string {
  return typeof item === "object" && item !== null && !Array.isArray(item)
    ? flatObjectText(item)
    : (JSON.stringify(item) ?? "null");
}

/** A list as JSON text, each item written by `itemText`. */
export function listText<T>(list: readonly T[], itemText: (item: T) => string): string {
  if (list.length === 0) return "[]";
  let text = "[";
  for (let i = 0; i < list.length; i++) text += (i === 0 ? "" : ",") + itemText(list[i] as T);
  return `${text}]`;
}

/** A string, number, boolean or null as JSON text; undefined for anything else. */
function scalarText(value: unknown): string | undefined {
  if (typeof value === "string") return jsonString(value);
  if (value === null) return "null";
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "number") return Number.isFinite(value) ? String(value) : "null";
  return undefined;
}
