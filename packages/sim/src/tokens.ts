/**
 * Token accounting for the simulator: one token = one whitespace-separated word.
 * Real tokenizers give ~1.3 tokens per English word; the sim only needs counts
 * that are stable, cheap and easy to check in tests, and its answers are built
 * from single words joined by single spaces, so the count is exact for them.
 */
export function countTokens(text: string): number {
  return splitWords(text).length;
}

/** The whitespace-separated words of a text, without empty entries. */
export function splitWords(text: string): string[] {
  return text.split(/\s+/u).filter((word) => word.length > 0);
}
