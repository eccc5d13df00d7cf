import type { Comparison, ResponseEvent } from '@shadow-replay/contracts';
import { z } from 'zod';

/** Longest answer excerpt kept in `comparison.excerpts`, in Unicode code points. */
export const MAX_EXCERPT_CODE_POINTS = 2000;

/** Marks an excerpt that was cut at {@link MAX_EXCERPT_CODE_POINTS}. */
export const EXCERPT_ELLIPSIS = '…';

/** The beginning of each side's answer, so a reviewer can read what was compared; null for a side without an answer. */
export const AnswerExcerptsSchema = z.object({ stable: z.string().nullable(), candidate: z.string().nullable() });
export type AnswerExcerpts = z.infer<typeof AnswerExcerptsSchema>;

/**
 * The excerpts of both answers of a pair, carried in the record as `comparison.excerpts`.
 *
 * The EvaluationRecord's contract has no field for answer texts and its top level drops unknown
 * keys, while `comparison` is a loose object, so the excerpts travel there (additive, like the
 * other comparison extras). Each excerpt is the first choice's content, followed by one line per
 * tool call (`[tool call] name(arguments)`), cut to {@link MAX_EXCERPT_CODE_POINTS} code points
 * (the last one an ellipsis when cut). Answers on the evaluations topic have already been through
 * the gateway's redaction, so this copies nothing that was not on the bus before.
 */
export function answerExcerpts(stable: ResponseEvent, candidate: ResponseEvent): AnswerExcerpts {
  return { stable: answerExcerpt(stable), candidate: answerExcerpt(candidate) };
}

/** The excerpt of one side, or null when it has no answer (an error, an abort). */
export function answerExcerpt(event: ResponseEvent): string | null {
  const choices = event.response?.choices ?? [];
  // The same choice compareResponses compares.
  const choice = choices.find((candidate) => candidate.index === 0) ?? choices[0];
  if (choice === undefined) return null;
  const lines = choice.content === null || choice.content === '' ? [] : [choice.content];
  for (const call of choice.toolCalls) lines.push(`[tool call] ${call.function.name}(${call.function.arguments})`);
  return truncateCodePoints(lines.join('\n'), MAX_EXCERPT_CODE_POINTS);
}

/** The excerpts a record carries, or null when it has none (an evaluator older than excerpts) or they are malformed. */
export function readAnswerExcerpts(comparison: Comparison): AnswerExcerpts | null {
  const parsed = AnswerExcerptsSchema.safeParse(comparison.excerpts);
  return parsed.success ? parsed.data : null;
}

/** `text` cut to at most `max` code points, the last one {@link EXCERPT_ELLIPSIS} when it was cut; surrogate pairs stay whole. */
export function truncateCodePoints(text: string, max: number): string {
  if (text.length <= max) return text;
  const points = [...text];
  return points.length <= max ? text : `${points.slice(0, Math.max(0, max - 1)).join('')}${EXCERPT_ELLIPSIS}`;
}
