import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runWindow } from '@shadow-replay/cli';
import { ensureTopics, silentLogger } from '@shadow-replay/platform';
import type { SimArrival, SimChatRequest } from '@shadow-replay/sim';
import { requestEvent, responseEvent } from './support/events.js';
import { uniqueName } from './support/harness.js';
import { answered, setupReplay } from './support/replay-setup.js';

const HOUR = 3_600_000;
const fromStable = { maxTokensCap: 50, maxTokensFromStable: { factor: 2, minimum: 5 } };

function limitsById(arrivals: SimArrival[]): Record<string, SimChatRequest['max_tokens']> {
  return Object.fromEntries(arrivals.map((arrival) => [String(arrival.headers['x-shadow-request-id']), arrival.request.max_completion_tokens ?? arrival.request.max_tokens]));
}

describe('max_tokens set from the live answer\'s length', () => {
  it('takes factor × the completion tokens of the live answer in a combined record, at least the minimum, within the request\'s limit and the cap', async (t) => {
    const arrivals: SimArrival[] = [];
    const tapped = uniqueName('company-llm-log');
    const s = await setupReplay(t, { transforms: fromStable }, { profile: 'fast', onChat: (arrival) => arrivals.push(arrival) }, {
      input: {
        kind: 'field-mapping',
        topics: [tapped],
        mapping: { requestId: '/id', messages: '/messages', params: '/params', stable: { content: '/answer', completionTokens: '/out', promptTokens: '/in', latencyMs: '/ms', error: '/error' } },
      },
    });
    await ensureTopics(s.scope.kafka, [tapped], 1);
    t.after(async () => {
      const admin = s.scope.kafka.admin();
      await admin.connect();
      await admin.deleteTopics({ topics: [tapped] }).catch(() => undefined);
      await admin.disconnect();
    });
    const record = (id: string, out: number | null, extra: Record<string, unknown> = {}) => ({ id, messages: [{ role: 'user', content: `question ${id}` }], answer: 'recorded answer', ms: 100, in: 4, ...(out === null ? {} : { out }), ...extra });
    const records = [
      record('short', 1),
      record('medium', 20),
      record('long', 100),
      record('user-limit', 20, { params: { max_tokens: 10 } }),
      record('user-limit-new-name', 20, { params: { max_completion_tokens: 12 } }),
      record('failed-live', 20, { error: 'upstream timeout' }),
      record('no-usage', null),
    ];
    const producer = s.scope.kafka.producer();
    await producer.connect();
    t.after(() => producer.disconnect());
    await producer.send({ topic: tapped, messages: records.map((value) => ({ key: value.id, value: JSON.stringify(value) })) });
    await s.startReplay();
    await answered(s, records.length);
    assert.deepEqual(limitsById(arrivals), {
      short: 5, // 2 × 1, raised to the minimum
      medium: 40, // 2 × 20
      long: 50, // 2 × 100, held at maxTokensCap
      'user-limit': 10, // never above what the request allowed
      'user-limit-new-name': 12,
      'failed-live': 50, // no usable length: the cap alone
      'no-usage': 50,
    });
  });

  it('takes the length from the stable answers a window replay loaded', async (t) => {
    const arrivals: SimArrival[] = [];
    const s = await setupReplay(t, { transforms: { maxTokensFromStable: { factor: 1.5, minimum: 8 } } }, { profile: 'fast', onChat: (arrival) => arrivals.push(arrival) });
    const topics = s.scope.config.kafka.topics;
    const from = Date.now() - 3 * HOUR;
    const plan = [
      { id: 'w-short', out: 2 },
      { id: 'w-long', out: 30 },
      { id: 'w-unanswered', out: null },
    ];
    const producer = s.scope.kafka.producer();
    await producer.connect();
    t.after(() => producer.disconnect());
    await producer.send({ topic: topics.requests, messages: plan.map((p, i) => ({ key: p.id, value: JSON.stringify(requestEvent(p.id, { occurredAt: from + i })), timestamp: String(from + i) })) });
    await producer.send({
      topic: topics.stableResponses,
      messages: plan.flatMap((p, i) => {
        if (p.out === null) return [];
        const answer = responseEvent(p.id, 'stable', { occurredAt: from + i + 100 });
        return [{ key: p.id, value: JSON.stringify({ ...answer, usage: { prompt: 4, completion: p.out, total: 4 + p.out, source: 'usage' } }), timestamp: String(from + i + 100) }];
      }),
    });
    const summary = await runWindow({ config: s.scope.config, from, to: from + HOUR, rate: 100, log: silentLogger(), print: () => undefined });
    assert.equal(summary.handled, 3);
    assert.deepEqual(limitsById(arrivals), { 'w-short': 8, 'w-long': 45, 'w-unanswered': undefined });
  });

  it('falls back to maxTokensCap for a live request, whose answer replay does not have', async (t) => {
    const arrivals: SimArrival[] = [];
    const s = await setupReplay(t, { transforms: fromStable }, { profile: 'fast', onChat: (arrival) => arrivals.push(arrival) });
    await s.produce([requestEvent('live'), requestEvent('live-limited', { body: { max_tokens: 7 } })]);
    await s.startReplay();
    await answered(s, 2);
    assert.deepEqual(limitsById(arrivals), { live: 50, 'live-limited': 7 });
  });
});
