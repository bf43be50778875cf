/** A LIKE pattern matching `text` anywhere, case-insensitively, with LIKE's wildcards escaped (`escape '\'`). */
export function containsPattern(text: string): string {
  return `%${text.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}
