import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { DeadLetterHeader, Outcome, PENDING, ShadowConfigSchema, evalQueuePrefix } from '@shadow-replay/contracts';
import { JoinService, JoinState, joinSettings, type StoredSide } from '@shadow-replay/join';
import { OutcomeStore, ensureTopics, silentLogger, waitFor } from '@shadow-replay/platform';
import { Queue } from 'bullmq';
import type { Kafka } from 'kafkajs';
import { responseEvent } from './support/events.js';
import { testScope } from './support/harness.js';
import { freePort, scrapeMetric } from './support/service-process.js';

const WINDOW_MS = 1_500;

async function startJoin(t: TestContext, joinConfig: Record<string, unknown> = {}) {
  const port = await freePort();
  const scope = testScope(t, (id) => ({
    experiment: {
      id: `exp-${id}`,
      candidates: [
        { name: 'cand', baseUrl: 'http://127.0.0.1:1' },
        { name: 'cand-b', baseUrl: 'http://127.0.0.1:1' },
      ],
      join: { windowMs: WINDOW_MS },
    },
    join: { listen: { port }, sweepIntervalMs: 200, ...joinConfig },
  }));
  const experimentId = scope.config.experiment?.id ?? '';
  const topics = scope.config.kafka.topics;
  await ensureTopics(scope.kafka, [topics.stableResponses, topics.candidateResponses, topics.deadLetter], 3);
  const outcomes = new OutcomeStore({ redis: scope.redis, keyPrefix: scope.config.redis.keyPrefix });
  const producer = scope.kafka.producer();
  await producer.connect();
  t.after(() => producer.disconnect());
  const join = new JoinService({ settings: joinSettings(scope.config, scope.env), log: silentLogger() });
  t.after(() => join.close());
  await join.start();
  const queue = new Queue(scope.config.redis.evalQueue, { connection: scope.redis, prefix: evalQueuePrefix(scope.config.redis.keyPrefix) });
  t.after(() => queue.close());
  const url = `http://127.0.0.1:${port}`;
  return {
    scope,
    experimentId,
    outcomes,
    queue,
    url,
    stable: (id: string, content?: string) =>
      producer.send({ topic: topics.stableResponses, messages: [{ key: id, value: JSON.stringify(responseEvent(id, 'stable', content === undefined ? {} : { content })) }] }),
    candidate: (id: string, arm = 'cand', content?: string) =>
      producer.send({ topic: topics.candidateResponses, messages: [{ key: id, value: JSON.stringify(responseEvent(id, arm, { experimentId, ...(content === undefined ? {} : { content }) })) }] }),
    /** Waits until the join has handled (and committed) everything on its two topics. */
    drained: () => waitCommitted(scope.kafka, `${scope.config.kafka.clientId}-join`, [topics.stableResponses, topics.candidateResponses]),
  };
}

/** Polls until the group's committed offsets reach the end of every partition of `topics`. */
async function waitCommitted(kafka: Kafka, groupId: string, topics: string[]): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await waitFor(
      async () => {
        for (const topic of topics) {
          const ends = await admin.fetchTopicOffsets(topic);
          const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
          for (const end of ends) {
            const at = committed?.partitions.find((partition) => partition.partition === end.partition)?.offset ?? '-1';
            if (Number(end.offset) > 0 && Number(at) < Number(end.offset)) return false;
          }
        }
        return true;
      },
      { timeoutMs: 30_000, intervalMs: 200, what: `group ${groupId} to commit the end of ${topics.join(', ')}` },
    );
  } finally {
    await admin.disconnect();
  }
}

describe('late arrivals after the join window expired', () => {
  it('dead-letters and counts a side that comes after its pair expired, once, without pairing it or changing conservation', async (t) => {
    const join = await startJoin(t);
    const { experimentId, outcomes, scope } = join;
    // Replay counts a request as consumed before it calls the candidate.
    for (const id of ['late-stable', 'late-cand', 'on-time']) await outcomes.consume(experimentId, 'cand', id);
    await join.candidate('late-stable');
    await join.candidate('late-cand');
    await join.candidate('on-time');
    await join.stable('on-time');
    await waitFor(async () => (await outcomes.counts(experimentId, 'cand'))[Outcome.stableMissing] === 2, { timeoutMs: 30_000, what: 'two candidates to expire' });

    // The stable side of an expired pair comes late, twice (a redelivery); a replayed call
    // publishes the expired candidate's answer again, twice; a stable answer no experiment asked for.
    await join.stable('late-stable');
    await join.stable('late-stable');
    await join.candidate('late-cand');
    await join.candidate('late-cand');
    await join.stable('unasked');
    await join.drained();

    const letters = await scope.read(scope.config.kafka.topics.deadLetter);
    const described = letters.map((record) => ({
      key: record.key?.toString(),
      reason: String(record.headers[DeadLetterHeader.reason]).split(':')[0],
      stage: String(record.headers[DeadLetterHeader.stage]),
      experiment: String(record.headers[DeadLetterHeader.experiment]),
      topic: String(record.headers[DeadLetterHeader.sourceTopic]),
    }));
    described.sort((a, b) => String(a.key).localeCompare(String(b.key)));
    assert.deepEqual(described, [
      { key: 'late-cand', reason: 'late_arrival', stage: 'join', experiment: experimentId, topic: scope.config.kafka.topics.candidateResponses },
      { key: 'late-stable', reason: 'late_arrival', stage: 'join', experiment: experimentId, topic: scope.config.kafka.topics.stableResponses },
    ], 'one dead letter per late side, however often it was delivered');
    assert.equal(await scrapeMetric(join.url, 'shadow_join_late_arrivals_total', { side: 'stable' }), 1);
    assert.equal(await scrapeMetric(join.url, 'shadow_join_late_arrivals_total', { side: 'candidate' }), 1);
    assert.equal(await scrapeMetric(join.url, 'shadow_join_expired_total'), 2);

    const jobs = await join.queue.getJobs(['waiting', 'active', 'completed', 'failed', 'delayed']);
    assert.deepEqual(jobs.map((job) => (job.data as { requestId: string }).requestId), ['on-time'], 'late sides are never paired');
    const counts = await outcomes.counts(experimentId, 'cand');
    assert.equal(counts.consumed, 3);
    assert.equal(counts[Outcome.stableMissing], 2, 'the late requests stay counted once, as stable_missing');
    assert.equal(counts[PENDING], 1, 'the paired request waits for the evaluator');
    assert.deepEqual(await outcomes.arms(experimentId), ['cand'], 'nothing is counted for the stable answer nobody asked for');

    const prefix = `${scope.config.redis.keyPrefix}:join`;
    for (const id of ['late-stable', 'late-cand']) {
      assert.equal(await scope.redis.hlen(`${prefix}:{${id}}:pending`), 0, `no new wait for ${id}`);
    }
    assert.equal(await scope.redis.zcard(`${prefix}:deadlines`), 0, 'no deadline left behind');
    const unaskedTtl = await scope.redis.pttl(`${prefix}:{unasked}:stable`);
    assert.ok(unaskedTtl > 0 && unaskedTtl <= WINDOW_MS, `a stable answer nobody asked for only waits out the window (pttl ${unaskedTtl})`);
    assert.equal(await scope.redis.exists(`${prefix}:{unasked}:expired`, `${prefix}:{unasked}:done`), 0, 'and leaves nothing else behind');
    const tombstoneTtl = await scope.redis.pttl(`${prefix}:{late-stable}:expired`);
    assert.ok(tombstoneTtl > 0 && tombstoneTtl <= scope.config.join.lateArrivalTtlMs, `the tombstone of an expired pair has a TTL (pttl ${tombstoneTtl})`);
  });
});

describe('expiry sweeping in Redis', () => {
  const side = (offset: string): StoredSide => ({ event: `{"offset":"${offset}"}`, topic: 't', partition: 0, offset });

  it('pairs a stable side that came after the deadline but before the sweep, and never also expires it', async (t) => {
    const scope = testScope(t, () => ({}));
    const windowMs = 60_000;
    const state = new JoinState({ redis: scope.redis, keyPrefix: scope.config.redis.keyPrefix, windowMs });
    assert.deepEqual(await state.offerCandidate('r1', 'e', 'a', side('c1')), { state: 'waiting' });
    const offer = await state.receiveStable('r1', side('s1'));
    assert.deepEqual(offer, { waiting: [{ experimentId: 'e', arm: 'a', side: side('c1') }], late: [] });
    // The sweeper runs past the deadline while the pair is being handed off: it must leave it alone.
    const afterDeadline = Date.now() + windowMs + 1_000;
    assert.deepEqual(await state.expire(afterDeadline), [], 'a pair being handed off is not expired');
    await state.markDone('r1', 'e', 'a');
    assert.deepEqual(await state.expire(afterDeadline + 10 * windowMs), [], 'nor later, once it was handed off');
    assert.equal(await state.checkCandidate('r1', 'e', 'a'), 'done');
  });

  it('hands an expired pair to a second sweeper when the first died before settling it', async (t) => {
    const scope = testScope(t, () => ({}));
    const state = new JoinState({ redis: scope.redis, keyPrefix: scope.config.redis.keyPrefix, windowMs: 1, claimLeaseMs: 200 });
    await state.offerCandidate('r2', 'e', 'a', side('c2'));
    const now = Date.now() + 1_000;
    assert.deepEqual(await state.expire(now), [{ requestId: 'r2', experimentId: 'e', arm: 'a' }]);
    // That sweeper dies here, before settling and acknowledging.
    assert.deepEqual(await state.expire(now + 100), [], 'not while the first claim holds');
    const again = await state.expire(now + 300);
    assert.deepEqual(again, [{ requestId: 'r2', experimentId: 'e', arm: 'a' }], 'the claim lapsed and the pair is handed out again');
    await state.acknowledgeExpired(again);
    assert.deepEqual(await state.expire(now + 10_000), [], 'an acknowledged pair is done');
    assert.deepEqual(await state.receiveStable('r2', side('s2')), { waiting: [], late: [{ experimentId: 'e', arm: 'a' }] }, 'its stable side is late');
    assert.equal(await state.checkCandidate('r2', 'e', 'a'), 'late');
  });
});

describe('the join payload limit', () => {
  it('never stores a side over join.maxPayloadBytes: the candidate is dead-lettered as too_large and counted dead_letter, keeping conservation exact', async (t) => {
    const limit = 4_096;
    const join = await startJoin(t, { maxPayloadBytes: limit });
    const { experimentId, outcomes, scope } = join;
    const big = 'x'.repeat(limit);
    for (const id of ['big-cand', 'big-stable', 'normal']) {
      for (const arm of ['cand', 'cand-b']) await outcomes.consume(experimentId, arm, id);
    }
    // An oversized candidate answer (delivered twice), with a normal stable side.
    await join.stable('big-cand');
    await join.candidate('big-cand', 'cand', big);
    await join.candidate('big-cand', 'cand', big);
    await join.candidate('big-cand', 'cand-b');
    // An oversized stable side: one arm was waiting for it, the other comes after it.
    await join.candidate('big-stable', 'cand');
    await join.drained();
    await join.stable('big-stable', big);
    await join.drained();
    await join.candidate('big-stable', 'cand-b');
    // A normal pair, and an oversized stable answer nobody asked for.
    await join.stable('normal');
    await join.candidate('normal', 'cand');
    await join.candidate('normal', 'cand-b');
    await join.stable('unasked', big);
    await join.drained();

    const letters = (await scope.read(scope.config.kafka.topics.deadLetter)).map((record) => ({
      key: record.key?.toString(),
      arm: (JSON.parse(record.value?.toString() ?? '{}') as { arm?: string }).arm,
      reason: String(record.headers[DeadLetterHeader.reason]),
      experiment: String(record.headers[DeadLetterHeader.experiment]),
      bytes: record.value?.length ?? 0,
    }));
    letters.sort((a, b) => `${a.key}/${a.arm}`.localeCompare(`${b.key}/${b.arm}`));
    assert.deepEqual(
      letters.map(({ key, arm, experiment }) => ({ key, arm, experiment })),
      [
        { key: 'big-cand', arm: 'cand', experiment: experimentId },
        { key: 'big-stable', arm: 'cand', experiment: experimentId },
        { key: 'big-stable', arm: 'cand-b', experiment: experimentId },
      ],
      'one dead letter per refused pair, each the candidate record of its experiment',
    );
    for (const letter of letters) assert.match(letter.reason, /^too_large: the (candidate|stable) answer .*over join\.maxPayloadBytes 4096/);
    assert.ok((letters[0]?.bytes ?? 0) > limit, 'the oversized candidate record is dead-lettered with its original bytes');
    assert.match(letters[1]?.reason ?? '', /stable answer \(.*responses\.stable \d+\/\d+\)/, 'the reason says where the oversized stable side is');

    // cand: both big pairs refused; cand-b: its big-cand pair is within the limit and pairs normally.
    const expected = { cand: { deadLetter: 2, pending: 1 }, 'cand-b': { deadLetter: 1, pending: 2 } };
    for (const [arm, want] of Object.entries(expected)) {
      const counts = await outcomes.counts(experimentId, arm);
      assert.equal(counts.consumed, 3, arm);
      assert.equal(counts[Outcome.deadLetter], want.deadLetter, `${arm}: refused pairs are counted dead_letter`);
      assert.equal(counts[PENDING], want.pending, `${arm}: the paired requests wait for the evaluator`);
    }
    assert.equal(await outcomes.state(experimentId, 'cand-b', 'big-cand'), PENDING, 'an arm whose sides are within the limit pairs normally');
    const jobs = await join.queue.getJobs(['waiting', 'active', 'completed', 'failed', 'delayed']);
    assert.deepEqual(
      jobs.map((job) => { const data = job.data as { requestId: string; arm: string }; return `${data.requestId}/${data.arm}`; }).sort(),
      ['big-cand/cand-b', 'normal/cand', 'normal/cand-b'],
    );
    const prefix = `${scope.config.redis.keyPrefix}:join`;
    for (const id of ['big-stable', 'unasked']) {
      const stored = await scope.redis.strlen(`${prefix}:{${id}}:stable`);
      assert.ok(stored > 0 && stored < 512, `only a marker of the oversized stable side of ${id} is kept (${stored} bytes)`);
    }
    assert.equal(await scrapeMetric(join.url, 'shadow_join_too_large_total', { side: 'candidate' }), 2);
    assert.equal(await scrapeMetric(join.url, 'shadow_join_too_large_total', { side: 'stable' }), 2);
    assert.equal(await scrapeMetric(join.url, 'shadow_join_dead_letters_total', { reason: 'too_large' }), 3);
  });

  it('refuses a payload limit below 1 KiB at start, naming the field', () => {
    const parsed = ShadowConfigSchema.safeParse({ join: { maxPayloadBytes: 100 } });
    assert.equal(parsed.success, false);
    assert.deepEqual(parsed.error?.issues.map((issue) => issue.path.join('.')), ['join.maxPayloadBytes']);
    assert.equal(ShadowConfigSchema.parse({}).join.maxPayloadBytes, 1024 * 1024, 'default 1 MiB, the gateway\'s own event limit');
  });
});
