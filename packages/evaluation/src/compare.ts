import type { Choice, Comparison, ResponseEvent, ToolCall } from '@shadow-replay/contracts';
import { jsonEqual } from './json-equal.js';

/**
 * Comparison metrics of one pair, computed on the first choice (index 0) of each side.
 *
 * - `exactMatch`: the raw content is identical AND the tool calls agree. A null content counts
 *   as empty text, since tool-call-only answers differ in whether they send `null` or `""`.
 * - `normalizedMatch`: as `exactMatch`, after {@link normalizeText} on both contents.
 * - `toolCallAgreement`: see {@link toolCallsAgree}. Not in the v1 contract yet; the
 *   `Comparison` schema is open, so it travels as an additive field.
 * - `lengthRatio`: candidate characters / stable characters (Unicode code points of the
 *   content), null when the stable content is empty.
 * - `finishReasonAgreement`: both finish reasons are equal.
 *
 * A side without a response or without choices (an error, an abort) matches nothing: every
 * boolean is false and the ratio is null.
 */
export function compareResponses(stable: ResponseEvent, candidate: ResponseEvent): Comparison {
  const left = firstChoice(stable);
  const right = firstChoice(candidate);
  if (left === undefined || right === undefined) {
    return {
      exactMatch: false,
      normalizedMatch: false,
      lengthRatio: null,
      finishReasonAgreement: false,
      toolCallAgreement: false,
    };
  }
  const stableText = left.content ?? '';
  const candidateText = right.content ?? '';
  const toolCallAgreement = toolCallsAgree(left.toolCalls, right.toolCalls);
  const stableLength = codePointLength(stableText);
  return {
    exactMatch: toolCallAgreement && stableText === candidateText,
    normalizedMatch: toolCallAgreement && normalizeText(stableText) === normalizeText(candidateText),
    lengthRatio: stableLength === 0 ? null : codePointLength(candidateText) / stableLength,
    finishReasonAgreement: left.finishReason === right.finishReason,
    toolCallAgreement,
  };
}

/** Collapses every run of whitespace to one space, trims, and case-folds. */
export function normalizeText(text: string): string {
  // Upper then lower approximates full Unicode case folding: "Straße" and "STRASSE" agree.
  return text.replace(/\s+/gu, ' ').trim().toUpperCase().toLowerCase();
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
