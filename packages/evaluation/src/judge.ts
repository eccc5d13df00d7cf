import { contentHash, type ResponseEvent } from '@shadow-replay/contracts';

/** What the judge decided about one pair, from the candidate's point of view. */
export const JudgeVerdict = {
  win: 'win',
  loss: 'loss',
  tie: 'tie',
  /** The two orders disagreed: a tie, counted apart because it shows position bias or noise. */
  inconsistent: 'inconsistent',
  /** Identical answers: a tie without a judge call. */
  autoTie: 'auto_tie',
  /** Not in the judge's sample. */
  notSampled: 'not_sampled',
  /** A judge answer could not be read as a verdict; its raw text is kept. */
  parseError: 'parse_error',
  /**
   * No judge answer at all. Written only by older evaluators: a pair whose judge stays
   * unreachable now fails its run, and after `evaluator.attempts` runs ends `eval_failed`.
   */
  error: 'error',
} as const;
export type JudgeVerdict = (typeof JudgeVerdict)[keyof typeof JudgeVerdict];

export type Winner = 'A' | 'B' | 'tie';

export const DEFAULT_RUBRIC = [
  'You compare two answers to the same conversation. Judge which answer better serves the user:',
  'correctness first, then helpfulness, then clarity and concision. Ignore which answer comes first',
  'and do not prefer an answer for its length alone.',
].join(' ');

/** The last user turn and the two answers, blinded as A and B (MT-bench layout). */
export function judgePrompt(rubric: string, question: string, a: string, b: string): string {
  return [
    rubric,
    'Answer with JSON only: {"winner": "A" | "B" | "tie", "reason": "<one sentence>"}.',
    '',
    '[User Question]',
    question,
    '',
    "[The Start of Assistant A's Answer]",
    a,
    "[The End of Assistant A's Answer]",
    '',
    "[The Start of Assistant B's Answer]",
    b,
    "[The End of Assistant B's Answer]",
  ].join('\n');
}

/** Hash of the judge's instructions, recorded as provenance (`judgePromptHash`). */
export function judgePromptHash(rubric: string, model: string): string {
  return contentHash({ rubric, model, template: judgePrompt('', '', '', '') });
}

export type ParsedVerdict = { ok: true; winner: Winner; reason: string } | { ok: false; raw: string };

/**
 * Reads the judge's structured answer strictly: a JSON object (bare or in a ```json fence) with
 * `winner` "A", "B" or "tie". Anything else is a parse error that keeps the raw text.
 */
export function parseVerdict(text: string): ParsedVerdict {
  const fenced = /```(?:json)?\s*([\s\S]*?)```/i.exec(text)?.[1];
  for (const candidate of [text.trim(), fenced?.trim()]) {
    if (candidate === undefined || !candidate.startsWith('{')) continue;
    try {
      const value = JSON.parse(candidate) as { winner?: unknown; reason?: unknown };
      const winner = typeof value.winner === 'string' ? value.winner.trim() : '';
      const normalized = winner === 'A' || winner === 'B' ? winner : winner.toLowerCase() === 'tie' ? 'tie' : undefined;
      if (normalized !== undefined) return { ok: true, winner: normalized, reason: typeof value.reason === 'string' ? value.reason : '' };
    } catch {
      // not JSON: try the next form, then give up
    }
  }
  return { ok: false, raw: text.slice(0, 4000) };
}

/**
 * Combines the two orders. First call: A = stable, B = candidate; second: A = candidate, B =
 * stable. A side wins only when both orders agree; disagreement is an `inconsistent` tie.
 */
export function combineVerdicts(stableFirst: Winner, candidateFirst: Winner): JudgeVerdict {
  const first = stableFirst === 'B' ? 'candidate' : stableFirst === 'A' ? 'stable' : 'tie';
  const second = candidateFirst === 'A' ? 'candidate' : candidateFirst === 'B' ? 'stable' : 'tie';
  if (first !== second) return JudgeVerdict.inconsistent;
  return first === 'candidate' ? JudgeVerdict.win : first === 'stable' ? JudgeVerdict.loss : JudgeVerdict.tie;
}

/** The text an answer is judged on: its content plus its tool calls. */
export function answerText(event: ResponseEvent): string {
  const choice = event.response?.choices[0];
  if (choice === undefined) return '';
  const calls = choice.toolCalls.map((call) => `[tool call ${call.function.name}(${call.function.arguments})]`).join('\n');
  return [choice.content ?? '', calls].filter((part) => part.length > 0).join('\n');
}

/** The last user message of the conversation, as text. */
export function lastUserTurn(messages: ReadonlyArray<{ role: string; content?: unknown }>): string {
  for (let i = messages.length - 1; i >= 0; i--) {
    const message = messages[i];
    if (message?.role !== 'user') continue;
    const content = message.content;
    if (typeof content === 'string') return content;
    if (Array.isArray(content)) return content.map((part: unknown) => (typeof part === 'object' && part !== null && typeof (part as { text?: unknown }).text === 'string' ? (part as { text: string }).text : '')).join('\n');
  }
  return '';
}
