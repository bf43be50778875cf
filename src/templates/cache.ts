import type { TemplateRow } from "../store/types.js";
import { type CompiledPart, compileTemplatePart } from "./engine.js";

/** A template's parts, compiled. */
export interface CompiledTemplate {
  subject: CompiledPart;
  html: CompiledPart | null;
  text: CompiledPart | null;
}

/** How much template source the cache holds at most (characters), and how many templates. */
const MAX_CACHED_CHARACTERS = 16 * 1024 * 1024;
const MAX_CACHED_TEMPLATES = 500;

/**
 * Compiled templates in memory, per (sid, date_updated): date_updated only grows when a template
 * changes (template-queries.ts), so a cached entry is never stale, whichever process made the change.
 * The least recently used go first once the cache holds too many, or too much source.
 */
export class TemplateCache {
  private readonly entries = new Map<string, { compiled: CompiledTemplate; size: number }>();
  private size = 0;

  get(row: TemplateRow): CompiledTemplate {
    const key = `${row.sid}:${row.date_updated}`;
    const hit = this.entries.get(key);
    if (hit) {
      // Map keeps insertion order: moved to the end, it is the most recently used.
      this.entries.delete(key);
      this.entries.set(key, hit);
      return hit.compiled;
    }
    const compiled: CompiledTemplate = {
      subject: compileTemplatePart("Subject", row.subject),
      html: row.html === null ? null : compileTemplatePart("Html", row.html),
      text: row.text === null ? null : compileTemplatePart("Text", row.text),
    };
    const size = row.subject.length + (row.html?.length ?? 0) + (row.text?.length ?? 0);
    this.entries.set(key, { compiled, size });
    this.size += size;
    for (const [oldest, entry] of this.entries) {
      if (this.size <= MAX_CACHED_CHARACTERS && this.entries.size <= MAX_CACHED_TEMPLATES) break;
      if (oldest === key) break;
      this.entries.delete(oldest);
      this.size -= entry.size;
    }
    return compiled;
  }
}
