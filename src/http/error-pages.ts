import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { ErrorCodeInfo } from "../domain/errors.js";

/**
 * The page behind every `more_info` (`/restcomm/errors/{code}.html`, the path Restcomm used): the
 * code's own line of docs/errors.md, what it means and what to do, rendered as HTML. A Notification
 * is read by a person who was not there when it happened; a link to the line that tells them what to
 * change is worth more than the code's name. The docs ship with the server (the repository and the
 * npm package both hold docs/); when the file is missing, the page still names the code.
 */
const ERRORS_DOC = fileURLToPath(new URL("../../../docs/errors.md", import.meta.url));

interface DocLine {
  meaning: string;
  whatToDo: string;
}

let docLines: Map<number, DocLine> | undefined;

/** docs/errors.md's table rows by code, read once. */
function readDocLines(): Map<number, DocLine> {
  if (docLines) return docLines;
  docLines = new Map();
  let text = "";
  try {
    text = readFileSync(ERRORS_DOC, "utf8");
  } catch {
    return docLines;
  }
  for (const line of text.split("\n")) {
    // | <a id="13101"></a>13101 | HTTP | meaning | what to do |
    const cells = /^\| <a id="(\d+)"><\/a>\d+ \| (.*) \|$/.exec(line.trim());
    const [, code, rest] = cells ?? [];
    if (code === undefined || rest === undefined) continue;
    const [, meaning, whatToDo] = rest.split(" | ");
    if (meaning !== undefined && whatToDo !== undefined) docLines.set(Number(code), { meaning, whatToDo });
  }
  return docLines;
}

export function errorPage(code: number, info: ErrorCodeInfo): string {
  const words = info.name.replace(/([a-z])([A-Z])/g, "$1 $2");
  const status =
    info.status === null
      ? "A delivery outcome, shown in a message's error_code (and in its Notification)."
      : `Answered with HTTP status ${info.status}.`;
  const doc = readDocLines().get(code);
  const body = doc
    ? `<p>${inline(doc.meaning)}</p><h2>What to do</h2><p>${inline(doc.whatToDo)}</p>`
    : "<p>See docs/errors.md in the Mailroom repository for what causes it and how to fix it.</p>";
  return `<!doctype html><html><head><meta charset="utf-8"><title>Mailroom error ${code}</title></head><body><h1>${code}: ${words}</h1><p>${status}</p>${body}</body></html>`;
}

/** The Markdown a table cell uses, as HTML: `code`, **bold**, and links as their text (they point into the docs). */
function inline(markdown: string): string {
  return escapeHtml(markdown)
    .replace(/`([^`]+)`/g, "<code>$1</code>")
    .replace(/\*\*([^*]+)\*\*/g, "<strong>$1</strong>")
    .replace(/\[([^\]]+)\]\([^)]*\)/g, "$1");
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
