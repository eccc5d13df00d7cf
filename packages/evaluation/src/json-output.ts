/** What an answer holds, read as JSON. */
export type JsonReading = { kind: 'none' } | { kind: 'invalid' } | { kind: 'valid'; value: unknown };

/** The kinds of difference {@link jsonDiff} counts. */
export const JsonChange = { added: 'added', removed: 'removed', changed: 'changed' } as const;
export type JsonChange = (typeof JsonChange)[keyof typeof JsonChange];

/** Structural difference of two JSON values, stable → candidate. */
export interface JsonDiff {
  /** Paths present only in the candidate. */
  added: number;
  /** Paths present only in stable. */
  removed: number;
  /** Paths present in both with a different scalar, or a different type. */
  changed: number;
  /** The first {@link MAX_JSON_DIFF_EXAMPLES} differences, in document order. */
  examples: { change: JsonChange; path: string }[];
}

export const MAX_JSON_DIFF_EXAMPLES = 20;
/** Longest example path kept whole; a longer one keeps its two ends around an ellipsis, so a deeply nested answer cannot bloat the record. */
export const MAX_JSON_PATH_LENGTH = 200;

// An opening fence whose info string is `json` (any case), e.g. "```json" or "``` JSON {.x}".
const JSON_FENCE = /^[ \t]*```[ \t]*json(?![\w-])[^\n]*\n/imu;
const CLOSING_FENCE = /^[ \t]*```[ \t]*$/mu;

/**
 * Reads an answer as JSON. An answer is JSON-looking when, after trimming, it starts with `{`
 * or `[` (then the whole trimmed answer must parse), or when it contains a fenced block whose
 * info string is `json` (then the body of the first such block must parse; a fence left open,
 * as in an answer cut off by `max_tokens`, runs to the end). Anything else, a bare scalar
 * included, is `none`: prose is not invalid JSON.
 */
export function readJson(text: string | null): JsonReading {
  const trimmed = (text ?? '').trim();
  let body: string;
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    body = trimmed;
  } else {
    const fence = JSON_FENCE.exec(trimmed);
    if (fence === null) return { kind: 'none' };
    const rest = trimmed.slice(fence.index + fence[0].length);
    const close = CLOSING_FENCE.exec(rest);
    body = close === null ? rest : rest.slice(0, close.index);
  }
  try {
    return { kind: 'valid', value: JSON.parse(body) as unknown };
  } catch {
    return { kind: 'invalid' };
  }
}

/** `true`/`false` for a JSON-looking answer that does/does not parse, null otherwise (see {@link readJson}). */
export function jsonValidity(text: string | null): boolean | null {
  const reading = readJson(text);
  return reading.kind === 'none' ? null : reading.kind === 'valid';
}

/**
 * Structural diff of two parsed JSON values. Objects are compared by key (order ignored),
 * arrays by position (an element inserted at the front shifts every later one: that is a
 * change at each position, which is what a consumer indexing the array would see). A subtree
 * present on one side only counts once, at its root; a scalar that differs, or a value whose
 * type differs (object vs array vs scalar), counts once as `changed`.
 *
 * Paths are JSONPath-like: `$` is the root, `.key` or `["odd key"]` a member, `[3]` an element;
 * one longer than {@link MAX_JSON_PATH_LENGTH} is shortened in the middle with `…`. The walk is
 * iterative, so deeply nested input cannot overflow the stack.
 */
export function jsonDiff(stable: unknown, candidate: unknown, maxExamples: number = MAX_JSON_DIFF_EXAMPLES): JsonDiff {
  const diff: JsonDiff = { added: 0, removed: 0, changed: 0, examples: [] };
  walkDifferences(stable, candidate, (change, path) => {
    diff[change]++;
    if (diff.examples.length < maxExamples) diff.examples.push({ change, path: shorten(path()) });
    return true;
  });
  return diff;
}

/**
 * Structural equality of parsed JSON values: object key order is ignored, array order is not.
 * Only meant for values produced by `JSON.parse`.
 */
export function jsonEqual(a: unknown, b: unknown): boolean {
  let equal = true;
  walkDifferences(a, b, () => (equal = false));
  return equal;
}

interface Frame {
  stable: unknown;
  candidate: unknown;
  parent: Frame | null;
  step: string;
  /** Set on a member present on one side only: nothing to descend into, just report it. */
  only?: JsonChange;
}

/**
 * Visits each difference in document order (stable's key order, then the candidate's new keys)
 * until `visit` returns false. The path is built on demand from the chain of frames, so an
 * equality check never pays for it.
 */
function walkDifferences(stable: unknown, candidate: unknown, visit: (change: JsonChange, path: () => string) => boolean): void {
  const stack: Frame[] = [{ stable, candidate, parent: null, step: '$' }];
  while (stack.length > 0) {
    const frame = stack.pop()!;
    if (frame.only !== undefined) {
      if (!visit(frame.only, () => pathOf(frame))) return;
      continue;
    }
    const a = frame.stable;
    const b = frame.candidate;
    if (a === b) continue;
    const children: Frame[] = [];
    const child = (step: string, stableValue: unknown, candidateValue: unknown, only?: JsonChange) =>
      children.push({ stable: stableValue, candidate: candidateValue, parent: frame, step, ...(only === undefined ? {} : { only }) });
    if (Array.isArray(a) && Array.isArray(b)) {
      for (let i = 0; i < Math.max(a.length, b.length); i++) {
        child(`[${i}]`, a[i], b[i], i >= b.length ? JsonChange.removed : i >= a.length ? JsonChange.added : undefined);
      }
    } else if (isRecord(a) && isRecord(b)) {
      for (const key of Object.keys(a)) child(member(key), a[key], b[key], Object.hasOwn(b, key) ? undefined : JsonChange.removed);
      for (const key of Object.keys(b)) if (!Object.hasOwn(a, key)) child(member(key), undefined, b[key], JsonChange.added);
    } else {
      // Two different scalars, or two different types.
      if (!visit(JsonChange.changed, () => pathOf(frame))) return;
      continue;
    }
    // Reversed, so the stack pops them in document order.
    for (let i = children.length - 1; i >= 0; i--) stack.push(children[i]!);
  }
}

function pathOf(frame: Frame): string {
  const steps: string[] = [];
  for (let current: Frame | null = frame; current !== null; current = current.parent) steps.push(current.step);
  return steps.reverse().join('');
}

function shorten(path: string): string {
  if (path.length <= MAX_JSON_PATH_LENGTH) return path;
  const keep = (MAX_JSON_PATH_LENGTH - 1) / 2;
  return `${path.slice(0, Math.ceil(keep))}…${path.slice(-Math.floor(keep))}`;
}

function member(key: string): string {
  return /^[A-Za-z_$][\w$]*$/u.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
