import type { EvaluationRecord, ResponseEvent, SideFigures, ToolCall } from '@shadow-replay/contracts';

export const EXPERIMENT = 'exp-1';
export const SOURCES = {
  stable: { topic: 'shadow.responses.stable', partition: 0, offset: '41' },
  candidate: { topic: 'shadow.responses.candidate', partition: 0, offset: '17' },
};

interface ResponseOptions {
  arm?: string;
  requestId?: string;
  content?: string | null;
  toolCalls?: ToolCall[];
  finishReason?: string | null;
  outcome?: ResponseEvent['outcome'];
  e2eMs?: number;
  ttftMs?: number | null;
  usage?: { prompt: number; completion: number } | null;
  itl?: ResponseEvent['timing']['itl'];
  outputTokensPerSec?: number | null;
}

/** A valid ResponseEvent with one choice; every field can be overridden. */
export function responseEvent(options: ResponseOptions = {}): ResponseEvent {
  const arm = options.arm ?? 'stable';
  const outcome = options.outcome ?? 'ok';
  const usage = options.usage === undefined ? { prompt: 100, completion: 20 } : options.usage;
  return {
    schemaVersion: 1,
    requestId: options.requestId ?? 'req-1',
    ...(arm === 'stable' ? {} : { experimentId: EXPERIMENT, configHash: 'cfg-abc' }),
    arm,
    occurredAt: 1_700_000_000_000,
    endpoint: { name: arm, model: 'm' },
    outcome,
    status: outcome === 'ok' ? 200 : 500,
    error: outcome === 'ok' ? null : { code: 'upstream_5xx', message: 'boom', retryable: true },
    response:
      outcome === 'ok'
        ? {
            choices: [
              {
                index: 0,
                content: options.content === undefined ? 'Hello there.' : options.content,
                toolCalls: options.toolCalls ?? [],
                finishReason: options.finishReason === undefined ? 'stop' : options.finishReason,
              },
            ],
          }
        : null,
    usage: usage === null ? null : { ...usage, total: usage.prompt + usage.completion, source: 'usage' },
    timing: {
      sentAt: 1_700_000_000_000,
      ttftMs: options.ttftMs === undefined ? 50 : options.ttftMs,
      e2eMs: options.e2eMs ?? 400,
      tpotMs: 10,
      itl: options.itl ?? null,
      outputTokensPerSec: options.outputTokensPerSec === undefined ? 100 : options.outputTokensPerSec,
    },
    streamed: true,
  };
}

export function toolCall(name: string, args: string): ToolCall {
  return { type: 'function', function: { name, arguments: args } };
}

function side(outcome: SideFigures['outcome'], e2eMs: number, ttftMs: number | null): SideFigures {
  return { outcome, e2eMs, ttftMs, tpotMs: 10, promptTokens: 100, completionTokens: 20, costUsd: 0.001 };
}

interface RecordOptions {
  arm?: string;
  stableE2e?: number;
  candidateE2e?: number;
  stableOutcome?: SideFigures['outcome'];
  candidateOutcome?: SideFigures['outcome'];
  exactMatch?: boolean;
  evaluatedAt?: number;
  /** Additive comparison fields (see `PairComparison`), merged into the v1 ones. */
  comparison?: Record<string, unknown>;
}

/** A valid EvaluationRecord for request `req-<i>`. */
export function evaluationRecord(i: number, options: RecordOptions = {}): EvaluationRecord {
  const stableE2e = options.stableE2e ?? 400;
  const candidateE2e = options.candidateE2e ?? 400;
  const exact = options.exactMatch ?? true;
  return {
    schemaVersion: 1,
    experimentId: EXPERIMENT,
    requestId: `req-${i}`,
    arm: options.arm ?? 'cand',
    evaluatedAt: options.evaluatedAt ?? 1_700_000_100_000 + i,
    stable: side(options.stableOutcome ?? 'ok', stableE2e, 50),
    candidate: side(options.candidateOutcome ?? 'ok', candidateE2e, 60),
    deltas: { e2eMs: candidateE2e - stableE2e, ttftMs: 10 },
    comparison: { exactMatch: exact, normalizedMatch: exact, lengthRatio: 1, finishReasonAgreement: true, ...options.comparison },
    judge: null,
    provenance: { sources: SOURCES, candidateConfigHash: 'cfg-abc', judgePromptHash: null, evaluatorVersion: 'test' },
  };
}

/** `n` identical, healthy records of one arm. */
export function records(n: number, options: RecordOptions = {}): EvaluationRecord[] {
  return Array.from({ length: n }, (_, i) => evaluationRecord(i, options));
}

/** Assert two floats agree to ~1e-9 relative, the precision numpy's values are quoted with. */
export function close(actual: number | null, expected: number): boolean {
  return actual !== null && Math.abs(actual - expected) <= 1e-9 * Math.max(1, Math.abs(expected));
}
