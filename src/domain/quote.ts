/** How much of a client's input an error message quotes back: enough to recognise it, never the whole of it. */
export const MAX_QUOTED_CHARACTERS = 100;

// What must not appear raw in an error message: controls (a log line or a header could be split), and
// what XML 1.0 cannot carry (the error may be rendered as a RestException). JSON.stringify escapes the
// C0 controls, quotes, backslashes and unpaired surrogates; these are the rest.
const ESCAPE = /[\u007f-\u009f\u2028\u2029\ufdd0-\ufdef\ufffe\uffff]/g;

/**
 * A client's text as an error message quotes it: in double quotes, escaped like a JSON string (so a
 * line break reads `\n`), and cut to its first 100 characters with its length said when longer. Every
 * error that echoes input goes through here: a 5 MB bad value must not become a 5 MB answer.
 */
export function quoteInput(text: string): string {
  let cut = text;
  if (text.length > MAX_QUOTED_CHARACTERS) {
    let end = MAX_QUOTED_CHARACTERS;
    // Never split a surrogate pair: half a character would itself be unrepresentable.
    const last = text.charCodeAt(end - 1);
    if (last >= 0xd800 && last <= 0xdbff) end--;
    cut = text.slice(0, end);
  }
  const quoted = JSON.stringify(cut).replace(
    ESCAPE,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
  if (cut === text) return quoted;
  return `${quoted.slice(0, -1)}…" (${text.length} characters)`;
}
