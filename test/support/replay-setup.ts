/** One replay experiment with a single arm `cand` calling a simulated candidate, on the test's own topics and keys. */
import type { TestContext } from 'node:test';
import { PENDING, ResponseEventSchema, decodeEvent, type RequestEvent, type ResponseEvent } from '@shadow-replay/contracts';
import { OutcomeStore, ensureTopics, silentLogger, waitFor } from '@shadow-replay/platform';
import { ReplayService, replaySettings } from '@shadow-replay/replay';
import { createSimServer, type SimServerOptions } from '@shadow-replay/sim';
import { testScope, type TestScope } from './harness.js';

export interface ReplaySetup {
  scope: TestScope;
  experimentId: string;
  outcomes: OutcomeStore;
  sim: ReturnType<typeof createSimServer>;
  /** Starts one more replay instance (closed when the test ends); `env` adds variables such as API keys. */
  startReplay: (env?: Record<string, string>) => Promise<ReplayService>;
  produce: (events: RequestEvent[]) => Promise<void>;
  /** Waits until `count` requests were consumed and none is pending, then returns the counts. */
  settled: (count: number) => Promise<Awaited<ReturnType<OutcomeStore['counts']>>>;
}

/** `candidate` configures the arm `cand`; a list configures several arms (each defaults to the sim's URL). */
export async function setupReplay(t: TestContext, candidate: Record<string, unknown> | Record<string, unknown>[], sim: SimServerOptions = { profile: 'fast' }, experiment: Record<string, unknown> = {}): Promise<ReplaySetup> {
  const server = createSimServer(sim);
  const { url } = await server.start();
  t.after(() => server.close());
  const scope = testScope(t, (id) => ({
    experiment: { id: `exp-${id}`, startFrom: 'earliest', candidates: (Array.isArray(candidate) ? candidate : [candidate]).map((arm) => ({ name: 'cand', baseUrl: url, ...arm })), ...experiment },
  }));
  const experimentId = scope.config.experiment?.id ?? '';
  const topics = scope.config.kafka.topics;
  await ensureTopics(scope.kafka, [topics.requests, topics.stableResponses, topics.candidateResponses, topics.deadLetter], 3);
  const outcomes = new OutcomeStore({ redis: scope.redis, keyPrefix: scope.config.redis.keyPrefix });
  const producer = scope.kafka.producer();
  await producer.connect();
  t.after(() => producer.disconnect());
  return {
    scope,
    experimentId,
    outcomes,
    sim: server,
    startReplay: async (env = {}) => {
      const replay = new ReplayService({ settings: replaySettings(scope.config, { ...scope.env, ...env }), log: silentLogger() });
      t.after(() => replay.close());
      await replay.start();
      return replay;
    },
    produce: async (events) => {
      await producer.send({ topic: topics.requests, messages: events.map((event) => ({ key: event.requestId, value: JSON.stringify(event) })) });
    },
    settled: async (count) => {
      await waitFor(
        async () => {
          const counts = await outcomes.counts(experimentId, 'cand');
          return counts.consumed === count && counts[PENDING] === 0 && counts.consumed > 0;
        },
        { timeoutMs: 60_000, what: `${count} requests settled` },
      );
      return outcomes.counts(experimentId, 'cand');
    },
  };
}

/** Replay alone settles nothing as evaluated; a successful call stays pending until the evaluator. */
export async function answered(s: ReplaySetup, count: number): Promise<void> {
  await waitFor(async () => (await s.scope.read(s.scope.config.kafka.topics.candidateResponses)).length >= count, { timeoutMs: 60_000, what: `${count} candidate responses` });
}

/** The candidate ResponseEvents published so far, by request id. */
export async function candidateAnswers(s: ReplaySetup): Promise<Map<string, ResponseEvent>> {
  const answers = new Map<string, ResponseEvent>();
  for (const record of await s.scope.read(s.scope.config.kafka.topics.candidateResponses)) {
    const decoded = decodeEvent(ResponseEventSchema, record.value);
    if (!decoded.ok) throw new Error(`a candidate answer does not decode: ${decoded.reason}`);
    answers.set(decoded.value.requestId, decoded.value);
  }
  return answers;
}

export const ids = (n: number, prefix = 'r'): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i}`);
