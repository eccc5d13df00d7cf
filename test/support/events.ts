/** Valid v1 events for tests that write straight to the topics or the queue. */
import type { RequestEvent, ResponseEvent } from '@shadow-replay/contracts';

export function requestEvent(requestId: string, options: { occurredAt?: number; body?: Partial<RequestEvent['body']>; tenant?: string; headers?: Record<string, string> } = {}): RequestEvent {
  return {
    schemaVersion: 1,
    requestId,
    occurredAt: options.occurredAt ?? Date.now(),
    route: '/v1/chat/completions',
    sampling: { rate: 1, key: null, sampled: true },
    body: { model: 'sim', messages: [{ role: 'user', content: `question ${requestId}` }], ...options.body },
    headers: options.headers ?? {},
    ...(options.tenant === undefined ? {} : { tenant: options.tenant }),
  };
}

export interface ResponseOptions {
  /** Set on candidate answers. */
  experimentId?: string;
  content?: string;
  e2eMs?: number;
  occurredAt?: number;
}

/** A successful streamed answer: 4 prompt and 3 completion tokens, TTFT half of E2E. */
export function responseEvent(requestId: string, arm: string, options: ResponseOptions = {}): ResponseEvent {
  const e2eMs = options.e2eMs ?? 20;
  const occurredAt = options.occurredAt ?? Date.now();
  return {
    schemaVersion: 1,
    requestId,
    ...(options.experimentId === undefined ? {} : { experimentId: options.experimentId }),
    arm,
    occurredAt,
    endpoint: { name: arm, model: 'sim' },
    outcome: 'ok',
    status: 200,
    error: null,
    response: { choices: [{ index: 0, content: options.content ?? `answer ${requestId}`, toolCalls: [], finishReason: 'stop' }] },
    usage: { prompt: 4, completion: 3, total: 7, source: 'usage' },
    timing: { sentAt: occurredAt, ttftMs: e2eMs / 2, e2eMs, tpotMs: null, itl: null, outputTokensPerSec: null },
    streamed: true,
  };
}
