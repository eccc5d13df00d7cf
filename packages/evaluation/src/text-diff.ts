/** What a run of tokens is in a diff from `before` to `after`. */
export const DiffKind = { equal: 'equal', removed: 'removed', added: 'added' } as const;
export type DiffKind = (typeof DiffKind)[keyof typeof DiffKind];

/** A run of consecutive tokens of one kind. */
export interface DiffPart {
  kind: DiffKind;
  text: string;
}

/**
 * Above this many cells (tokens of `before` × tokens of `after`, after the common prefix and
 * suffix are set aside) the middle is not aligned: it is shown as removed, then added. About
 * 16 MB of table; answer excerpts of 2,000 characters stay well below it.
 */
export const MAX_DIFF_CELLS = 4_000_000;

// Words (letters, digits, underscores and in-word apostrophes), runs of whitespace, and every
// other character on its own, so punctuation changes do not swallow the word next to them.
const TOKEN = /[\p{L}\p{N}_]+(?:['’][\p{L}\p{N}_]+)*|\s+|[^\s\p{L}\p{N}_]/gu;

/** Splits a text into the tokens {@link wordDiff} aligns; joining them gives the text back. */
export function diffTokens(text: string): string[] {
  return text.match(TOKEN) ?? [];
}

/**
 * A word-level diff: the longest common subsequence of the two token lists (see
 * {@link diffTokens}), as runs of equal, removed (only in `before`) and added (only in `after`)
 * text. Joining the equal and removed runs gives `before`; the equal and added runs, `after`.
 * O(n·m) time and memory in the tokens between the common prefix and suffix, bounded by
 * {@link MAX_DIFF_CELLS}.
 */
export function wordDiff(before: string, after: string): DiffPart[] {
  const a = diffTokens(before);
  const b = diffTokens(after);
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start++;
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) {
    endA--;
    endB--;
  }
  const parts: DiffPart[] = [];
  const push = (kind: DiffKind, text: string) => {
    if (text === '') return;
    const last = parts.at(-1);
    if (last?.kind === kind) last.text += text;
    else parts.push({ kind, text });
  };
  push(DiffKind.equal, a.slice(0, start).join(''));
  for (const [kind, token] of alignMiddle(a.slice(start, endA), b.slice(start, endB))) push(kind, token);
  push(DiffKind.equal, a.slice(endA).join(''));
  return parts;
}

function* alignMiddle(a: readonly string[], b: readonly string[]): Generator<[DiffKind, string]> {
  const n = a.length;
  const m = b.length;
  if (n === 0 || m === 0 || (n + 1) * (m + 1) > MAX_DIFF_CELLS) {
    for (const token of a) yield [DiffKind.removed, token];
    for (const token of b) yield [DiffKind.added, token];
    return;
  }
  // lcs[i][j] = LCS length of a[i..] and b[j..], so the walk below can go forward.
  const width = m + 1;
  const lcs = new Uint32Array((n + 1) * width);
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i * width + j] = a[i] === b[j] ? lcs[(i + 1) * width + j + 1]! + 1 : Math.max(lcs[(i + 1) * width + j]!, lcs[i * width + j + 1]!);
    }
  }
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (a[i] === b[j]) {
      yield [DiffKind.equal, a[i]!];
      i++;
      j++;
    } else if (lcs[(i + 1) * width + j]! >= lcs[i * width + j + 1]!) {
      yield [DiffKind.removed, a[i]!];
      i++;
    } else {
      yield [DiffKind.added, b[j]!];
      j++;
    }
  }
  for (; i < n; i++) yield [DiffKind.removed, a[i]!];
  for (; j < m; j++) yield [DiffKind.added, b[j]!];
}

/**
 * One side of a diff for a side-by-side view: `before` keeps the equal and removed runs,
 * `after` the equal and added ones. A run of whitespace alone between two changed runs joins
 * them, so "a b c" → "x y z" reads as one change rather than three highlighted words; the
 * whitespace at either end of a changed run is shown as unchanged. Joining the runs gives that
 * side's text back.
 */
export function diffSide(parts: readonly DiffPart[], side: 'before' | 'after'): DiffPart[] {
  const changed: DiffKind = side === 'before' ? DiffKind.removed : DiffKind.added;
  const kept = parts.filter((part) => part.kind === DiffKind.equal || part.kind === changed);
  const out: DiffPart[] = [];
  const push = (kind: DiffKind, text: string) => {
    if (text === '') return;
    const last = out.at(-1);
    if (last?.kind === kind) last.text += text;
    else out.push({ kind, text });
  };
  kept.forEach((part, index) => {
    const bridges = part.kind === DiffKind.equal && /^\s+$/u.test(part.text) && kept[index - 1]?.kind === changed && kept[index + 1]?.kind === changed;
    if (bridges || part.kind === DiffKind.equal) {
      push(bridges ? changed : DiffKind.equal, part.text);
      return;
    }
    const [, lead = '', body = '', trail = ''] = /^(\s*)([\s\S]*?)(\s*)$/u.exec(part.text) ?? [];
    push(DiffKind.equal, lead);
    push(changed, body);
    push(DiffKind.equal, trail);
  });
  return out;
}
