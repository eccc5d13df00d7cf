import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PENDING } from '@shadow-replay/contracts';
import { runWindow } from '@shadow-replay/cli';
import { EvaluatorService, evaluatorSettings } from '@shadow-replay/evaluator';
import { JoinService, joinSettings } from '@shadow-replay/join';
import { OutcomeStore, ensureTopics, silentLogger, waitFor } from '@shadow-replay/platform';
import { createSimServer, type SimArrival } from '@shadow-replay/sim';
import type { Message } from 'kafkajs';
import { requestEvent, responseEvent } from './support/events.js';
import { testScope, withDeadline } from './support/harness.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

describe('replaying a historical window', () => {
  it('replays exactly the requests stamped in [from, to) — at from in, at to out, late-written ones in, early stragglers out — pairs them with the stable answers of that window and evaluates them', async (t) => {
    const arrivals: SimArrival[] = [];
    const sim = createSimServer({ profile: 'fast', onChat: (arrival) => arrivals.push(arrival) });
    const candidate = await sim.start();
    t.after(() => sim.close());
    const scope = testScope(t, (id) => ({ experiment: { id: `hist-${id}`.slice(0, 40), maxLagMs: 1_000, candidates: [{ name: 'cand', baseUrl: candidate.url }] }, replay: { listen: { port: 0 }, windowLateMs: 5 * MINUTE } }));
    const topics = scope.config.kafka.topics;
    await ensureTopics(scope.kafka, [topics.requests, topics.stableResponses, topics.candidateResponses, topics.evaluations, topics.deadLetter], 3);

    const from = Date.now() - 5 * HOUR;
    const to = from + HOUR;
    // Written in this order to each partition; timestamps do not grow with offsets, as with several gateways.
    const partitionPlan = (p: number) => [
      { id: `p${p}-before`, at: from - HOUR + p },
      { id: `p${p}-at-from`, at: from + p, inside: true },
      ...Array.from({ length: 5 }, (_, k) => ({ id: `p${p}-inside-${k}`, at: from + (k + 1) * 10 * MINUTE + p, inside: true })),
      { id: `p${p}-at-to`, at: to + p },
      { id: `p${p}-written-late`, at: to - 1 - p, inside: true },
      { id: `p${p}-straggler-before-from`, at: from - 1 - p },
      { id: `p${p}-written-later`, at: from + 30 * MINUTE, inside: true },
      { id: `p${p}-after`, at: to + 10 * MINUTE + p },
      { id: `p${p}-hours-after`, at: to + 2 * HOUR + p },
    ];
    const plan = [0, 1, 2].flatMap((p) => partitionPlan(p).map((entry) => ({ ...entry, partition: p })));
    const inside = plan.filter((entry) => entry.inside === true).map((entry) => entry.id);
    const producer = scope.kafka.producer();
    await producer.connect();
    t.after(() => producer.disconnect());
    for (const p of plan) {
      await producer.send({ topic: topics.requests, messages: [{ key: p.id, partition: p.partition, value: JSON.stringify(requestEvent(p.id, { occurredAt: p.at })), timestamp: String(p.at) }] });
    }
    // The live answers come roughly in time order (the gateway publishes each after its answer).
    await producer.send({ topic: topics.stableResponses, messages: plan.toSorted((a, b) => a.at - b.at).map((p) => ({ key: p.id, value: JSON.stringify(responseEvent(p.id, 'stable', { content: `recorded answer ${p.id}`, e2eMs: 120, occurredAt: p.at + 120 })), timestamp: String(p.at + 120) })) });

    // The join here reads live stable answers from another (empty) topic, so the stable side of
    // every pair can only come from the answers the window command loads for it.
    const liveStable = `${topics.stableResponses}.live`;
    await ensureTopics(scope.kafka, [liveStable], 1);
    t.after(async () => {
      const admin = scope.kafka.admin();
      await admin.connect();
      await admin.deleteTopics({ topics: [liveStable] }).catch(() => undefined);
      await admin.disconnect();
    });
    const joinConfig = { ...scope.config, kafka: { ...scope.config.kafka, topics: { ...topics, stableResponses: liveStable } } };
    const join = new JoinService({ settings: joinSettings(joinConfig, scope.env), log: silentLogger() });
    const evaluator = new EvaluatorService({ settings: evaluatorSettings(scope.config, scope.env), log: silentLogger() });
    t.after(() => Promise.all([join.close(), evaluator.close()]));
    await join.start();
    await evaluator.start();

    const lines: string[] = [];
    const summary = await runWindow({ config: scope.config, from, to, rate: 200, log: silentLogger(), print: (line) => lines.push(line) });
    const n = inside.length;
    assert.deepEqual(arrivals.map((arrival) => String(arrival.headers['x-shadow-request-id'])).toSorted(), inside.toSorted(), 'the candidate saw the window and nothing else');
    assert.equal(summary.total, n);
    assert.equal(summary.handled, n);
    // Read and left alone, per partition: the record stamped `to` and the straggler stamped before `from`
    // (the scan stops at the first record stamped 5 min or more past `to`).
    assert.equal(summary.outside, 3 * 2);
    assert.match(summary.experimentId, /-w\d{8}T\d{4}-\d{8}T\d{4}$/);
    assert.ok(summary.stablePreloaded >= n, `stable answers loaded: ${summary.stablePreloaded}`);
    assert.ok(lines.some((line) => line.includes(`${n + 6} records to read`)), lines.join('\n'));

    const outcomes = new OutcomeStore({ redis: scope.redis, keyPrefix: scope.config.redis.keyPrefix });
    await waitFor(
      async () => {
        const counts = await outcomes.counts(summary.experimentId, 'cand');
        return counts.evaluated === n && counts[PENDING] === 0;
      },
      { timeoutMs: 60_000, what: 'the window pairs to be evaluated' },
    );
    const counts = await outcomes.counts(summary.experimentId, 'cand');
    assert.equal(counts.consumed, n, 'records outside the window are not consumed by its experiment');
    assert.equal(counts.shed_lag, 0, 'a window replay is never shed for lag');
  });

  it('finishes a window written by a transactional producer and replays only its committed requests: transaction markers and aborted records take offsets that are never delivered', async (t) => {
    const arrivals: SimArrival[] = [];
    const sim = createSimServer({ profile: 'fast', onChat: (arrival) => arrivals.push(arrival) });
    const candidate = await sim.start();
    t.after(() => sim.close());
    // No late slack: the scan of a partition ends at its first offset stamped `to` or later.
    const scope = testScope(t, (id) => ({ experiment: { id: `tx-${id}`.slice(0, 40), candidates: [{ name: 'cand', baseUrl: candidate.url }] }, replay: { listen: { port: 0 }, windowLateMs: 0 } }));
    const topics = scope.config.kafka.topics;
    await ensureTopics(scope.kafka, [topics.requests], 5);
    await ensureTopics(scope.kafka, [topics.stableResponses, topics.candidateResponses, topics.deadLetter], 3);
    // As a Kafka Streams application with exactly-once writes: every write is in a transaction, and
    // the broker stamps its commit or abort marker with its own clock, so records are stamped as written.
    const producer = scope.kafka.producer({ transactionalId: `${scope.id}-tx`, idempotent: true, maxInFlightRequests: 1 });
    const admin = scope.kafka.admin();
    await Promise.all([producer.connect(), admin.connect()]);
    t.after(() => Promise.all([producer.disconnect(), admin.disconnect()]));
    /** Offsets written to each partition of the requests topic: records and one marker per transaction. */
    const written = new Map<number, number>();
    const transaction = async (end: 'commit' | 'abort', writes: { topic: string; messages: Message[] }[]) => {
      const tx = await producer.transaction();
      for (const write of writes) await tx.send(write);
      await (end === 'commit' ? tx.commit() : tx.abort());
      const touched = new Set<number>();
      for (const message of writes.filter((write) => write.topic === topics.requests).flatMap((write) => write.messages)) {
        const partition = message.partition ?? -1;
        written.set(partition, (written.get(partition) ?? 0) + 1);
        touched.add(partition);
      }
      for (const partition of touched) written.set(partition, (written.get(partition) ?? 0) + 1);
      // The broker writes the markers after answering the commit: wait for them, so the clock read
      // next is later than their stamps.
      await waitFor(
        async () => {
          const offsets = await admin.fetchTopicOffsets(topics.requests);
          return offsets.every((entry) => Number(entry.high) === (written.get(entry.partition) ?? 0));
        },
        { timeoutMs: 10_000, what: 'the transaction markers' },
      );
    };
    /** Request ids name their partition: `b3` is written to partition 3. */
    const requests = (ids: string[], timestamp?: number) => ({
      topic: topics.requests,
      messages: ids.map((id) => ({ key: id, partition: Number(id.slice(1, 2)), value: JSON.stringify(requestEvent(id)), ...(timestamp === undefined ? {} : { timestamp: String(timestamp) }) })),
    });
    const stables = (ids: string[]) => ({ topic: topics.stableResponses, messages: ids.map((id) => ({ key: id, value: JSON.stringify(responseEvent(id, 'stable', { content: `recorded answer ${id}` })) })) });
    /** Waits until the clock reads `at`, so what is written next is stamped `at` or later. */
    const reach = (at: number) => waitFor(() => Date.now() >= at, { timeoutMs: 1_000, intervalMs: 1, what: 'the clock to move on' });

    await transaction('commit', [requests(['b0', 'b3', 'b4'])]);
    const from = Date.now() + 1;
    await reach(from);
    const committedFirst = ['a0-0', 'a0-1', 'a1-0', 'a1-1', 'a2-0', 'a2-1'];
    const abortedFirst = ['x0-0', 'x0-1', 'x2-0'];
    const committedLast = ['c0-0', 'c2-0', 'c2-1'];
    const abortedLast = ['y1-0', 'y1-1', 'y3-0', 'y3-1'];
    // `s4`, stamped before the window, is written in it: partition 4's only offset in the window is its commit marker.
    await transaction('commit', [requests(committedFirst), requests(['s4'], from - HOUR), stables(committedFirst)]);
    await transaction('abort', [requests(abortedFirst), stables(abortedFirst)]);
    await transaction('commit', [requests(committedLast), stables(committedLast)]);
    // The last offsets of partitions 1 and 3 in the window are an aborted transaction and its marker
    // (partition 3 has nothing else in the window); partition 2's last is a commit marker.
    await transaction('abort', [requests(abortedLast), stables(abortedLast)]);
    const to = Date.now() + 1;
    await reach(to);
    // Partition 0's scan ends here.
    await transaction('commit', [requests(['e0'])]);

    const lines: string[] = [];
    const summary = await withDeadline(runWindow({ config: scope.config, from, to, rate: 200, log: silentLogger(), print: (line) => lines.push(line) }), 90_000, 'the window replay to finish');
    const expected = [...committedFirst, ...committedLast];
    assert.deepEqual(arrivals.map((arrival) => String(arrival.headers['x-shadow-request-id'])).toSorted(), expected.toSorted(), 'the candidate saw the committed requests of the window and nothing else');
    assert.equal(summary.handled, expected.length);
    assert.equal(summary.outside, 0);
    // Offsets scanned and never delivered, per partition: 0: three markers and two aborted records;
    // 1: two markers and two aborted; 2: three markers and one aborted; 3: one marker and two
    // aborted; 4: one marker.
    assert.equal(summary.skipped, 5 + 4 + 4 + 3 + 1);
    assert.ok(lines.some((line) => line.includes('up to 26 records to read')), lines.join('\n'));
    assert.match(lines.at(-1) ?? '', /26\/26 offsets: 9 records read, 17 offsets skipped, 9 in the window 100\.0%/, 'the progress bar ends full');
    assert.equal(summary.stablePreloaded, expected.length, 'the committed stable answers are loaded, the aborted ones are not');
    const counts = await new OutcomeStore({ redis: scope.redis, keyPrefix: scope.config.redis.keyPrefix }).counts(summary.experimentId, 'cand');
    assert.equal(counts.consumed, expected.length);
  });

  it('paces at the recorded inter-arrival times divided by --speed, from the first record read (no burst after a slow start)', async (t) => {
    const arrivals: SimArrival[] = [];
    const sim = createSimServer({ profile: 'fast', onChat: (arrival) => arrivals.push(arrival) });
    const candidate = await sim.start();
    t.after(() => sim.close());
    const scope = testScope(t, (id) => ({ experiment: { id: `speed-${id}`.slice(0, 40), candidates: [{ name: 'cand', baseUrl: candidate.url }] } }));
    const topics = scope.config.kafka.topics;
    await ensureTopics(scope.kafka, [topics.requests, topics.stableResponses, topics.candidateResponses, topics.deadLetter], 1);
    const from = Date.now() - HOUR;
    // Eight requests recorded 600 ms apart from the window's start: 300 ms apart at speed 2.
    const producer = scope.kafka.producer();
    await producer.connect();
    t.after(() => producer.disconnect());
    await producer.send({
      topic: topics.requests,
      messages: Array.from({ length: 8 }, (_, i) => ({ key: `s${i}`, value: JSON.stringify(requestEvent(`s${i}`, { occurredAt: from + i * 600 })), timestamp: String(from + i * 600) })),
    });
    // Started paused, as when the group join takes long: records are read late, and the recorded
    // schedule starts with the first of them, not when the service started.
    const experimentId = `speed-${scope.id}`.slice(0, 40);
    const pausedKey = `${scope.config.redis.keyPrefix}:replay:{${experimentId}}:paused`;
    await scope.redis.set(pausedKey, '1');
    const running = runWindow({ config: scope.config, experimentId, from, to: from + 10_000, speed: 2, log: silentLogger(), print: () => undefined });
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    assert.equal(arrivals.length, 0, 'nothing sent while paused');
    await scope.redis.del(pausedKey);
    // Paused again mid-schedule, after the third call: the schedule resumes where it stopped
    // (no burst of the calls that fell due during the pause).
    await waitFor(() => arrivals.length >= 3, { timeoutMs: 30_000, intervalMs: 5, what: 'the third call' });
    await scope.redis.set(pausedKey, '1');
    const pausedAt = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const duringPause = arrivals.filter((arrival) => arrival.receivedAt > pausedAt + 600).length;
    await scope.redis.del(pausedKey);
    const summary = await running;
    assert.equal(summary.handled, 8);
    assert.equal(duringPause, 0, 'nothing sent while paused (once the pause is seen: within 500 ms)');
    const times = arrivals.map((arrival) => arrival.receivedAt).toSorted((a, b) => a - b);
    const gaps = times.slice(1).map((time, i) => time - (times[i] ?? 0));
    assert.equal(gaps.length, 7);
    for (const gap of gaps) assert.ok(gap >= 200, `calls ${gaps.join(', ')} ms apart; 300 expected, and more across the pause`);
    assert.ok(gaps.some((gap) => gap >= 1_000), `one gap spans the second pause: ${gaps.join(', ')}`);
    const span = (times.at(-1) ?? 0) - (times[0] ?? 0);
    assert.ok(span >= 7 * 300 + 1_000 - 100 && span < 7 * 300 + 1_500 + 1_500, `the eight calls span ${span} ms (2,100 at speed 2, plus the pause)`);
  });
});
