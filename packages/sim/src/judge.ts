import type { SimJudgeSettings } from './profile.js';
import { hashToUnit } from './random.js';
import { countTokens } from './tokens.js';

/** Verdicts the simulated judge gives. */
export const SimVerdictWinner = {
  A: 'A',
  B: 'B',
  Tie: 'tie',
} as const;
export type SimVerdictWinner = (typeof SimVerdictWinner)[keyof typeof SimVerdictWinner];

/** The JSON object the simulated judge answers with. */
export interface SimVerdict {
  readonly winner: SimVerdictWinner;
  readonly reason: string;
}

/** The two answers found in a judge prompt. */
export interface SimJudgedPair {
  readonly a: string;
  readonly b: string;
}

const label = String.raw`(?:answer|response|assistant|output|candidate)`;

function between(prompt: string, open: RegExp, close: RegExp): string | undefined {
  const start = open.exec(prompt);
  if (start === null) return undefined;
  const rest = prompt.slice(start.index + start[0].length);
  const end = close.exec(rest);
  return end === null ? undefined : rest.slice(0, end.index);
}

// MT-bench style: [The Start of Assistant A's Answer] … [The End of Assistant A's Answer]
function mtBench(prompt: string): SimJudgedPair | undefined {
  const side = (x: string): string | undefined =>
    between(
      prompt,
      new RegExp(String.raw`\[The Start of ${label} ${x}'s Answer\]`, 'i'),
      new RegExp(String.raw`\[The End of ${label} ${x}'s Answer\]`, 'i'),
    );
  const a = side('A');
  const b = side('B');
  return a !== undefined && b !== undefined ? { a, b } : undefined;
}

// XML style: <answer_a>…</answer_a>, <response-b>…</response-b>, <answer a>…</answer a>
function xmlTags(prompt: string): SimJudgedPair | undefined {
  const side = (x: string): string | undefined =>
    new RegExp(String.raw`<(${label})[ _-]?${x}>([\s\S]*?)</\1[ _-]?${x}>`, 'i').exec(prompt)?.[2];
  const a = side('A');
  const b = side('B');
  return a !== undefined && b !== undefined ? { a, b } : undefined;
}

// Heading style, one marker per line: "Answer A:", "### Response B", "[Answer A]", "**Output B**:".
// "Answer A is better" is not a marker: the label must end the line or be followed by ":" / "]" / "**".
const headingMarker = new RegExp(
  String.raw`^[ \t]*(?:#{1,6}[ \t]*)?(?:\[|\*\*)?[ \t]*${label}[ \t_-]?([AB])(?:\]|\*\*|[ \t]*:|[ \t]*(?=\r?\n|$))(?:\*\*)?[ \t]*:?`,
  'gim',
);
// Where the B answer stops when nothing closes it: the next heading-like line.
const sectionEnd = /^[ \t]*(?:#|\[|<|---)/mu;

function headings(prompt: string): SimJudgedPair | undefined {
  const markers = [...prompt.matchAll(headingMarker)];
  const markerA = markers.find((m) => m[1]?.toUpperCase() === 'A');
  if (markerA === undefined) return undefined;
  const afterA = markerA.index + markerA[0].length;
  const markerB = markers.find((m) => m[1]?.toUpperCase() === 'B' && m.index >= afterA);
  if (markerB === undefined) return undefined;
  const body = prompt.slice(markerB.index + markerB[0].length).replace(/^[ \t]*\r?\n/u, '');
  const end = sectionEnd.exec(body);
  const b = end === null ? body : body.slice(0, end.index);
  return { a: prompt.slice(afterA, markerB.index), b };
}

/**
 * Finds answers A and B in a judge prompt. Understood layouts, tried in this order:
 * MT-bench `[The Start of Assistant A's Answer]…[The End of Assistant A's Answer]`,
 * XML tags `<answer_a>…</answer_a>` (also `response`, `output`, `assistant`, `candidate`),
 * and line headings `Answer A:` / `### Response A` / `[Answer A]`, where B runs to the
 * next line starting with `#`, `[`, `<` or `---`, or to the end.
 */
export function extractJudgedPair(prompt: string): SimJudgedPair | undefined {
  return mtBench(prompt) ?? xmlTags(prompt) ?? headings(prompt);
}

const asksForVerdict = /\b(?:verdict|winner|which (?:answer|response|assistant|output) is better|better (?:answer|response))\b/iu;

function normalise(text: string): string {
  return text.trim().replace(/\s+/gu, ' ');
}

function isCloseCall(pair: SimJudgedPair | undefined, closeCallWords: number): boolean {
  if (pair === undefined) return true;
  return Math.abs(countTokens(normalise(pair.a)) - countTokens(normalise(pair.b))) <= closeCallWords;
}

/**
 * The simulated judge's verdict, or `undefined` when the prompt is not a verdict request
 * (no A/B answers found and no mention of a verdict / winner / better answer).
 *
 * Rules, in order, all deterministic in (seed, prompt):
 * 1. position bias: when hash("judge-bias", seed, prompt) < positionBias, "A" — for every prompt,
 *    or, with `closeCallWords` set, only for close calls: answers whose word counts differ by at
 *    most `closeCallWords` (and prompts without parsable answers);
 * 2. no answers found: "A" or "B" by hash;
 * 3. answers equal after whitespace normalisation: "tie";
 * 4. the answer with more tokens (whitespace words) wins;
 * 5. equal lengths: a hash of the two texts *sorted* picks the winning text, so swapping
 *    A and B swaps the verdict (an unbiased judge is position-consistent).
 */
export function judgeVerdict(prompt: string, seed: string, settings: SimJudgeSettings): SimVerdict | undefined {
  const pair = extractJudgedPair(prompt);
  if (pair === undefined && !asksForVerdict.test(prompt)) return undefined;
  if (hashToUnit('judge-bias', seed, prompt) < settings.positionBias && (settings.closeCallWords === undefined || isCloseCall(pair, settings.closeCallWords))) {
    return { winner: SimVerdictWinner.A, reason: 'Answer A is preferred on balance.' };
  }
  if (pair === undefined) {
    const winner = hashToUnit('judge-blind', seed, prompt) < 0.5 ? SimVerdictWinner.A : SimVerdictWinner.B;
    return { winner, reason: `Answer ${winner} is preferred on balance.` };
  }
  const a = normalise(pair.a);
  const b = normalise(pair.b);
  if (a === b) return { winner: SimVerdictWinner.Tie, reason: 'Both answers are equivalent.' };
  const tokensA = countTokens(a);
  const tokensB = countTokens(b);
  if (tokensA !== tokensB) {
    const winner = tokensA > tokensB ? SimVerdictWinner.A : SimVerdictWinner.B;
    const [more, less] = tokensA > tokensB ? [tokensA, tokensB] : [tokensB, tokensA];
    return { winner, reason: `Answer ${winner} is more complete (${more} vs ${less} words).` };
  }
  const [first, second] = a < b ? [a, b] : [b, a];
  const preferred = hashToUnit('judge-tiebreak', seed, first, second) < 0.5 ? first : second;
  const winner = preferred === a ? SimVerdictWinner.A : SimVerdictWinner.B;
  return { winner, reason: `Answer ${winner} is preferred on balance.` };
}
