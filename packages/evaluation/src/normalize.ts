/** Collapses every run of whitespace to one space, trims, and case-folds. */
export function normalizeText(text: string): string {
  // Upper then lower approximates full Unicode case folding: "Straße" and "STRASSE" agree.
  return text.replace(/\s+/gu, ' ').trim().toUpperCase().toLowerCase();
}
