import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PENDING } from '@shadow-replay/contracts';
import { buildExperimentReport, renderReport } from '@shadow-replay/cli';
import { ensureTopics, silentLogger, waitFor } from '@shadow-replay/platform';
import type { SimArrival } from '@shadow-replay/sim';
import { requestEvent } from './support/events.js';
import { answered, candidateAnswers, ids, setupReplay, type ReplaySetup } from './support/replay-setup.js';

/** `question rN` is three estimated prompt tokens (four characters each), plus max_tokens 17: 20 tokens a request. */
const twentyTokens = (id: string) => requestEvent(id, { body: { max_tokens: 17 } });

/** The most calls that arrived within any `ms`-long span. */
function busiest(arrivals: SimArrival[], ms: number): number {
  const times = arrivals.map((arrival) => arrival.receivedAt).toSorted((a, b) => a - b);
  let most = 0;
  for (let i = 0, j = 0; i < times.length; i++) {
    while ((times[i] ?? 0) - (times[j] ?? 0) >= ms) j++;
    most = Math.max(most, i - j + 1);
  }
  return most;
}

/** Waits until every request is consumed and each is shed or answered (an answer stays pending until evaluated). */
async function decided(s: ReplaySetup, count: number): Promise<Awaited<ReturnType<ReplaySetup['outcomes']['counts']>>> {
  await waitFor(
    async () => {
      const counts = await s.outcomes.counts(s.experimentId, 'cand');
      return counts.consumed === count && counts.shed_budget + counts[PENDING] === count && (await candidateAnswers(s)).size === counts[PENDING];
    },
    { timeoutMs: 60_000, what: `${count} requests shed or answered` },
  );
  return s.outcomes.counts(s.experimentId, 'cand');
}

describe('replay budgets and the tokens/min limit', () => {
  it('holds one tokens-per-minute limit across two instances: calls spaced by their estimated tokens', async (t) => {
    const arrivals: SimArrival[] = [];
    // 6,000 tokens/min at 20 tokens a request: one call every 200 ms, five a second.
    const s = await setupReplay(t, { rate: { tokensPerMinute: 6_000, concurrency: 20 } }, { profile: 'fast', onChat: (arrival) => arrivals.push(arrival) });
    await s.produce(ids(15).map(twentyTokens));
    await Promise.all([s.startReplay(), s.startReplay()]);
    await answered(s, 15);
    assert.equal(arrivals.length, 15);
    const times = arrivals.map((arrival) => arrival.receivedAt).toSorted((a, b) => a - b);
    const span = (times.at(-1) ?? 0) - (times[0] ?? 0);
    // Each call waits for its slot, so the last is at least 14 slots after the first slot.
    assert.ok(span >= 14 * 200 - 300, `15 calls spread over ${span} ms`);
    assert.ok(busiest(arrivals, 1_000) <= 6, `${busiest(arrivals, 1_000)} calls within one second at five a second`);
  });

  it('stops two instances at a cost budget: what the candidate used never costs more than the budget, and the limit is recorded', async (t) => {
    const arrivals: SimArrival[] = [];
    const maxCost = 200;
    // One unit of currency per token: a request is estimated at 20 and costs at most that.
    const s = await setupReplay(
      t,
      { rate: { concurrency: 4 }, prices: { inputPerMillion: 1_000_000, outputPerMillion: 1_000_000 } },
      { profile: 'fast', onChat: (arrival) => arrivals.push(arrival) },
      { budget: { maxCost } },
    );
    await s.produce(ids(40).map(twentyTokens));
    await Promise.all([s.startReplay(), s.startReplay()]);
    const counts = await decided(s, 40);
    const spent = [...(await candidateAnswers(s)).values()].reduce((sum, answer) => sum + (answer.usage?.total ?? 0), 0);
    assert.ok(counts.shed_budget > 0, 'the cost budget was reached');
    assert.ok(spent <= maxCost, `the calls cost ${spent} of ${maxCost}`);
    assert.ok(spent > maxCost - 20 * 5, `the budget, not something else, stopped them (${spent} spent)`);
    assert.equal(arrivals.length, counts[PENDING], 'every admitted request was called once, no shed one was');
    assert.deepEqual(await s.outcomes.reasons(s.experimentId, 'cand'), { shed_budget: { cost: counts.shed_budget } });
  });

  it('sends nothing after the end time, even requests admitted before it that were still waiting for their slot, and the report names the limit', async (t) => {
    const arrivals: SimArrival[] = [];
    const endAt = Date.now() + 3_000;
    // 4 a second: 40 requests would take 10 s; all are read (and admitted) at once.
    const s = await setupReplay(t, { rate: { rps: 4, concurrency: 2 } }, { profile: 'fast', onChat: (arrival) => arrivals.push(arrival) }, { budget: { endAt: new Date(endAt).toISOString() } });
    const topics = s.scope.config.kafka.topics;
    await ensureTopics(s.scope.kafka, [topics.evaluations], 1);
    await s.produce(ids(40).map((id) => requestEvent(id)));
    await s.startReplay();
    const counts = await decided(s, 40);
    // The requests still waiting for a slot at the end time are shed then, not at their slots (up to 7 s later).
    assert.ok(Date.now() - endAt < 4_000, `all decided ${Date.now() - endAt} ms after the end time`);
    const late = arrivals.filter((arrival) => arrival.receivedAt > endAt + 250);
    assert.equal(late.length, 0, `${late.length} calls after the end time`);
    assert.ok(arrivals.length >= 3, `${arrivals.length} calls before the end time`);
    assert.equal(counts.shed_budget, 40 - arrivals.length);
    assert.deepEqual(await s.outcomes.reasons(s.experimentId, 'cand'), { shed_budget: { end_time: counts.shed_budget } });

    const report = await buildExperimentReport({
      experimentId: s.experimentId,
      topics,
      keyPrefix: s.scope.config.redis.keyPrefix,
      addresses: { kafkaBrokers: s.scope.env.KAFKA_BROKERS?.split(',') ?? [], redisUrl: s.scope.env.REDIS_URL ?? '', schemaRegistryUrl: undefined },
      log: silentLogger(),
    });
    assert.deepEqual(report.arms.find((arm) => arm.arm === 'cand')?.budgetLimitsReached, { end_time: counts.shed_budget });
    const note = `arm cand: shed_budget by the limit reached: end time ${counts.shed_budget}`;
    assert.ok(report.conservation.notes.includes(note), report.conservation.notes.join('\n'));
    assert.ok(renderReport(report, 'md').includes(note));
    assert.ok(renderReport(report, 'html').includes(note));
  });
});
