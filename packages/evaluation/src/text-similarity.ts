import { normalizeText } from './normalize.js';

/**
 * Longest stretch, in code points, of each text that the edit distance compares exactly, after
 * removing the prefix and suffix the two texts share. The DP is O(n·m): at the cap that is 4·10⁸
 * cells, about a second of CPU for one pair, the most an evaluator worker should spend on it.
 */
export const MAX_EDIT_CODE_POINTS = 20_000;

/** Longest stretch, in tokens, of each text that ROUGE-L compares exactly (see {@link MAX_EDIT_CODE_POINTS}). */
export const MAX_LCS_TOKENS = 5_000;

/** Options of {@link editSimilarity}. */
export interface EditSimilarityOptions {
  /** @defaultValue {@link MAX_EDIT_CODE_POINTS} */
  maxCodePoints?: number;
}

/** Options of {@link rougeLF1}. */
export interface RougeOptions {
  /** @defaultValue {@link MAX_LCS_TOKENS} */
  maxTokens?: number;
}

/**
 * Normalized edit similarity: `1 − Levenshtein(a, b) / max(|a|, |b|)` over the Unicode code
 * points of {@link normalizeText}(a) and (b); 1 for identical texts (two empty texts included),
 * 0 when nothing can be kept.
 *
 * Cost: the shared prefix and suffix are removed first (free for near-identical answers, the
 * common case in shadow traffic); the rest is a two-row dynamic programme, O(n·m) time and
 * O(m) memory. When what is left of either text exceeds `maxCodePoints`, only the first
 * `maxCodePoints` of each are aligned and every remaining code point counts as one edit, so the
 * distance is an upper bound and the similarity a LOWER bound of the exact value.
 */
export function editSimilarity(a: string, b: string, options: EditSimilarityOptions = {}): number {
  const left = codePoints(normalizeText(a));
  const right = codePoints(normalizeText(b));
  const longest = Math.max(left.length, right.length);
  if (longest === 0) return 1;
  const cap = options.maxCodePoints ?? MAX_EDIT_CODE_POINTS;
  const [middleA, middleB] = withoutSharedEnds(left, right);
  if (middleA.length <= cap && middleB.length <= cap) return 1 - levenshtein(middleA, middleB) / longest;
  // Past the cap every code point is one edit: lev(A, B) ≤ lev(head A, head B) + max(|tail A|, |tail B|).
  const tail = Math.max(middleA.length, middleB.length) - cap;
  return 1 - (levenshtein(middleA.subarray(0, cap), middleB.subarray(0, cap)) + tail) / longest;
}

/**
 * ROUGE-L F1 (Lin 2004, β = 1) with stable as the reference: tokens are the whitespace-separated
 * words of {@link normalizeText}, L the length of their longest common subsequence, precision
 * L / |candidate|, recall L / |stable|, and F1 = 2PR / (P + R) = 2L / (|stable| + |candidate|).
 * 1 when both are empty, 0 when only one is.
 *
 * Punctuation stays attached to its word ("mat." ≠ "mat"). As for {@link editSimilarity}, past
 * `maxTokens` the LCS is a lower bound, and so is the F1.
 */
export function rougeLF1(stable: string, candidate: string, options: RougeOptions = {}): number {
  const ids = new Map<string, number>();
  const reference = tokenIds(stable, ids);
  const hypothesis = tokenIds(candidate, ids);
  const total = reference.length + hypothesis.length;
  if (total === 0) return 1;
  const cap = options.maxTokens ?? MAX_LCS_TOKENS;
  const [middleA, middleB] = withoutSharedEnds(reference, hypothesis);
  // The shared prefix and suffix are part of a longest common subsequence; past the cap, the LCS
  // of the heads is a lower bound of the LCS of the whole.
  const common = reference.length - middleA.length + lcsLength(middleA.subarray(0, cap), middleB.subarray(0, cap));
  return (2 * common) / total;
}

/**
 * Levenshtein distance between two code-point sequences, exact (no cap): `kitten` → `sitting`
 * is 3. Exposed for tests and callers that bound their input themselves.
 */
export function levenshteinDistance(a: string, b: string): number {
  return levenshtein(codePoints(a), codePoints(b));
}

/** The two sequences without the prefix and the suffix they share (as views, no copy). */
function withoutSharedEnds(a: Int32Array, b: Int32Array): [Int32Array, Int32Array] {
  const shorter = Math.min(a.length, b.length);
  let start = 0;
  while (start < shorter && a[start] === b[start]) start++;
  let end = 0;
  while (end < shorter - start && a[a.length - 1 - end] === b[b.length - 1 - end]) end++;
  return [a.subarray(start, a.length - end), b.subarray(start, b.length - end)];
}

/** Two-row Levenshtein DP; the shorter sequence indexes the rows. */
function levenshtein(a: Int32Array, b: Int32Array): number {
  const [outer, inner] = a.length >= b.length ? [a, b] : [b, a];
  const m = inner.length;
  if (m === 0) return outer.length;
  let previous = new Int32Array(m + 1);
  let current = new Int32Array(m + 1);
  for (let j = 0; j <= m; j++) previous[j] = j;
  for (let i = 1; i <= outer.length; i++) {
    const symbol = outer[i - 1];
    // `diagonal` is previous[j − 1] and `left` is current[j − 1], kept in locals for speed.
    let diagonal = i - 1;
    let left = i;
    current[0] = i;
    for (let j = 1; j <= m; j++) {
      const above = previous[j]!;
      let best = diagonal + (inner[j - 1] === symbol ? 0 : 1);
      if (above + 1 < best) best = above + 1;
      if (left + 1 < best) best = left + 1;
      current[j] = best;
      diagonal = above;
      left = best;
    }
    [previous, current] = [current, previous];
  }
  return previous[m]!;
}

/** Length of the longest common subsequence, by a two-row DP. */
function lcsLength(a: Int32Array, b: Int32Array): number {
  const [outer, inner] = a.length >= b.length ? [a, b] : [b, a];
  const m = inner.length;
  if (m === 0) return 0;
  let previous = new Int32Array(m + 1);
  let current = new Int32Array(m + 1);
  for (let i = 1; i <= outer.length; i++) {
    const symbol = outer[i - 1];
    for (let j = 1; j <= m; j++) {
      const above = previous[j]!;
      const left = current[j - 1]!;
      current[j] = inner[j - 1] === symbol ? previous[j - 1]! + 1 : above > left ? above : left;
    }
    [previous, current] = [current, previous];
  }
  return previous[m]!;
}

function codePoints(text: string): Int32Array {
  const points = new Int32Array(text.length);
  let length = 0;
  for (const char of text) points[length++] = char.codePointAt(0)!;
  return points.subarray(0, length);
}

function tokenIds(text: string, ids: Map<string, number>): Int32Array {
  const normalized = normalizeText(text);
  if (normalized === '') return new Int32Array(0);
  return Int32Array.from(normalized.split(' '), (token) => {
    let id = ids.get(token);
    if (id === undefined) {
      id = ids.size;
      ids.set(token, id);
    }
    return id;
  });
}
