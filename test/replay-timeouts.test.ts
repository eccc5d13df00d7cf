import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ResponseEvent } from '@shadow-replay/contracts';
import { requestEvent } from './support/events.js';
import { candidateAnswers, ids, setupReplay, type ReplaySetup } from './support/replay-setup.js';

async function failedAnswers(s: ReplaySetup, count: number): Promise<ResponseEvent[]> {
  const counts = await s.settled(count);
  assert.equal(counts.candidate_error, count, 'every call ended as a candidate error');
  return [...(await candidateAnswers(s)).values()];
}

describe('deadlines of a candidate call', () => {
  it('ends a call whose headers came but no token did within firstTokenMs, although keep-alive bytes keep arriving', async (t) => {
    // The sim sends headers and an empty role chunk at once, then an SSE comment every 200 ms and never a token.
    const s = await setupReplay(t, { headers: { 'x-sim-fault': 'stall' }, retry: { attempts: 1 }, timeouts: { firstTokenMs: 800, idleMs: 5_000, totalMs: 20_000 } });
    await s.produce(ids(3).map((id) => requestEvent(id)));
    await s.startReplay();
    const answers = await failedAnswers(s, 3);
    for (const answer of answers) {
      assert.equal(answer.outcome, 'error');
      assert.equal(answer.status, 200, 'the headers had come');
      assert.equal(answer.error?.code, 'first_token_timeout', JSON.stringify(answer.error));
      assert.equal(answer.timing.ttftMs, null);
      assert.ok(answer.timing.e2eMs >= 790 && answer.timing.e2eMs < 5_000, `ended after ${answer.timing.e2eMs} ms, at the first-token deadline`);
    }
  });

  it('ends a stream that stops for longer than idleMs after its first token', async (t) => {
    // Three tokens a chunk at one token a second: a 3 s gap after the first chunk.
    const s = await setupReplay(
      t,
      { retry: { attempts: 1 }, timeouts: { firstTokenMs: 5_000, idleMs: 700, totalMs: 20_000 } },
      { profile: 'fast', overrides: { timeScale: 1, ttftMs: { median: 10, p99: 20 }, tokensPerSecond: 1, chunkTokens: 3, outputTokens: { min: 30, max: 30 } } },
    );
    await s.produce(ids(2).map((id) => requestEvent(id)));
    await s.startReplay();
    for (const answer of await failedAnswers(s, 2)) {
      assert.equal(answer.error?.code, 'stream_idle_timeout', JSON.stringify(answer.error));
      assert.notEqual(answer.timing.ttftMs, null, 'the first token had come');
      assert.ok(answer.timing.e2eMs < 3_000, `ended after ${answer.timing.e2eMs} ms, before the next chunk was due`);
    }
  });

  it('ends a call still streaming at totalMs, keeping what had come', async (t) => {
    // A chunk every 300 ms for 100 tokens: about 10 s of answer, never idle for long.
    const s = await setupReplay(
      t,
      { retry: { attempts: 1 }, timeouts: { firstTokenMs: 5_000, idleMs: 5_000, totalMs: 1_500 } },
      { profile: 'fast', overrides: { timeScale: 1, ttftMs: { median: 10, p99: 20 }, tokensPerSecond: 10, chunkTokens: 3, outputTokens: { min: 100, max: 100 } } },
    );
    await s.produce(ids(2).map((id) => requestEvent(id)));
    await s.startReplay();
    for (const answer of await failedAnswers(s, 2)) {
      assert.equal(answer.error?.code, 'total_timeout', JSON.stringify(answer.error));
      assert.ok(answer.timing.e2eMs >= 1_490 && answer.timing.e2eMs < 4_000, `ended after ${answer.timing.e2eMs} ms`);
      assert.ok((answer.response?.choices[0]?.content ?? '').length > 0, 'the part that came is kept');
    }
  });
});
