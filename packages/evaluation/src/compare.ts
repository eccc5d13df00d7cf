import type { Choice, Comparison, ResponseEvent, ToolCall } from '@shadow-replay/contracts';
import { jsonDiff, jsonEqual, readJson, type JsonDiff, type JsonReading } from './json-output.js';
import { normalizeText } from './normalize.js';
import { isRefusal } from './refusal.js';
import { editSimilarity, rougeLF1 } from './text-similarity.js';

/** One value per side of a pair. */
export interface BySide<T> {
  stable: T;
  candidate: T;
}

/**
 * The comparison metrics of one pair (DESIGN §4). The v1 `Comparison` contract holds the first
 * four; the others travel as additive fields (the contract schema is a loose object), and the
 * report reads them through {@link ComparisonExtrasSchema} so a record from an older evaluator
 * simply lacks them.
 */
export interface PairComparison extends Comparison {
  exactMatch: boolean;
  normalizedMatch: boolean;
  lengthRatio: number | null;
  finishReasonAgreement: boolean;
  toolCallAgreement: boolean;
  /** In [0, 1]; null when a side has no answer. */
  editSimilarity: number | null;
  /** In [0, 1]; null when a side has no answer. */
  rougeLF1: number | null;
  /** Per side: null when the answer is not JSON-looking (or absent), else whether it parses. */
  jsonValid: BySide<boolean | null>;
  /** Structural diff when both sides hold valid JSON, else null. */
  jsonDiff: JsonDiff | null;
  /** Per side: whether the answer opens with a refusal; null when the side has no answer. */
  refusal: BySide<boolean | null>;
}

/**
 * Comparison metrics of one pair, computed on the first choice (index 0) of each side.
 *
 * - `exactMatch`: the raw content is identical AND the tool calls agree. A null content counts
 *   as empty text, since tool-call-only answers differ in whether they send `null` or `""`.
 * - `normalizedMatch`: as `exactMatch`, after {@link normalizeText} on both contents.
 * - `toolCallAgreement`: see {@link toolCallsAgree}.
 * - `lengthRatio`: candidate characters / stable characters (Unicode code points of the
 *   content), null when the stable content is empty.
 * - `finishReasonAgreement`: both finish reasons are equal.
 * - `editSimilarity`: {@link editSimilarity} of the contents (normalized; capped, see there).
 * - `rougeLF1`: {@link rougeLF1} with stable as the reference.
 * - `jsonValid`: per side, see {@link readJson} for what counts as JSON-looking.
 * - `jsonDiff`: {@link jsonDiff} of the two parsed values when both sides are valid JSON.
 * - `refusal`: per side, {@link isRefusal}.
 *
 * A side without a response or without choices (an error, an abort) matches nothing: every
 * boolean is false, the pair metrics are null, and that side's per-side metrics are null.
 */
export function compareResponses(stable: ResponseEvent, candidate: ResponseEvent): PairComparison {
  const left = firstChoice(stable);
  const right = firstChoice(candidate);
  const stableJson = left === undefined ? NO_JSON : readJson(left.content);
  const candidateJson = right === undefined ? NO_JSON : readJson(right.content);
  const perSide = {
    jsonValid: { stable: validity(stableJson), candidate: validity(candidateJson) },
    refusal: { stable: left === undefined ? null : isRefusal(left.content), candidate: right === undefined ? null : isRefusal(right.content) },
  };
  if (left === undefined || right === undefined) {
    return {
      exactMatch: false,
      normalizedMatch: false,
      lengthRatio: null,
      finishReasonAgreement: false,
      toolCallAgreement: false,
      editSimilarity: null,
      rougeLF1: null,
      jsonValid: perSide.jsonValid,
      jsonDiff: null,
      refusal: perSide.refusal,
    };
  }
  const stableText = left.content ?? '';
  const candidateText = right.content ?? '';
  const toolCallAgreement = toolCallsAgree(left.toolCalls, right.toolCalls);
  const stableLength = codePointLength(stableText);
  const identical = stableText === candidateText;
  return {
    exactMatch: toolCallAgreement && identical,
    normalizedMatch: toolCallAgreement && normalizeText(stableText) === normalizeText(candidateText),
    lengthRatio: stableLength === 0 ? null : codePointLength(candidateText) / stableLength,
    finishReasonAgreement: left.finishReason === right.finishReason,
    toolCallAgreement,
    // Identical text skips the O(n·m) work: the common case when a runtime, not a model, changed.
    editSimilarity: identical ? 1 : editSimilarity(stableText, candidateText),
    rougeLF1: identical ? 1 : rougeLF1(stableText, candidateText),
    jsonValid: perSide.jsonValid,
    jsonDiff: stableJson.kind === 'valid' && candidateJson.kind === 'valid' ? jsonDiff(stableJson.value, candidateJson.value) : null,
    refusal: perSide.refusal,
  };
}

const NO_JSON: JsonReading = { kind: 'none' };

function validity(reading: JsonReading): boolean | null {
  return reading.kind === 'none' ? null : reading.kind === 'valid';
}

/**
 * Whether two lists of tool calls agree: same length, and pairwise, in order, the same function
 * name and structurally equal arguments (parsed as JSON, so key order and spacing do not matter).
 * Arguments that do not parse as JSON on either side are compared as raw strings. Call ids and
 * the order of parallel calls are not normalised: a reordered call list is a disagreement.
 */
export function toolCallsAgree(stable: readonly ToolCall[], candidate: readonly ToolCall[]): boolean {
  if (stable.length !== candidate.length) return false;
  return stable.every((call, index) => {
    const other = candidate[index]!;
    return call.function.name === other.function.name && argumentsAgree(call.function.arguments, other.function.arguments);
  });
}

function argumentsAgree(left: string, right: string): boolean {
  const a = parseJson(left);
  const b = parseJson(right);
  if (a.ok && b.ok) return jsonEqual(a.value, b.value);
  return left === right;
}

function parseJson(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch {
    return { ok: false };
  }
}

function firstChoice(event: ResponseEvent): Choice | undefined {
  const choices = event.response?.choices ?? [];
  return choices.find((choice) => choice.index === 0) ?? choices[0];
}

function codePointLength(text: string): number {
  return [...text].length;
}
