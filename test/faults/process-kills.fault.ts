import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { waitFor } from '@shadow-replay/platform';
import { FaultPipeline, drawPoints, faultRequests, faultSeed, finishCase } from '../support/fault-pipeline.js';
import type { ServiceName } from '../support/service-process.js';

const KILLS = 3;

/**
 * How far the stage under test has got, read from outside the process: the moment of each
 * kill is a point on this scale, so the process always dies with work in hand.
 */
const PROGRESS: Record<Exclude<ServiceName, 'gateway'>, { what: string; read: (pipeline: FaultPipeline) => Promise<number> }> = {
  replay: { what: 'requests consumed by replay', read: async (pipeline) => (await pipeline.counts()).consumed },
  join: { what: 'pairs handed to the evaluation queue', read: (pipeline) => pipeline.jobsAdded() },
  evaluator: {
    what: 'pairs evaluated or failed',
    read: async (pipeline) => {
      const counts = await pipeline.counts();
      return counts.evaluated + counts.eval_failed;
    },
  },
};

async function killRepeatedly(t: TestContext, stage: Exclude<ServiceName, 'gateway'>): Promise<void> {
  const requests = faultRequests();
  const seed = faultSeed();
  const points = drawPoints(seed, KILLS, requests);
  const progress = PROGRESS[stage];
  t.diagnostic(`FAULT_SEED=${seed}: kill -9 ${stage} when ${progress.what} reach ${points.join(', ')} of ${requests}`);
  const pipeline = await FaultPipeline.start(t);
  const service = pipeline.services[stage];
  const killedAt: number[] = [];
  // A restarted stage must show progress within this (a rebalance after a kill takes about the
  // 30 s session timeout); a stage that does not is stuck, and the case says so without waiting longer.
  const progressTimeoutMs = 60_000 + requests * 20;
  const killer = async () => {
    for (const point of points) {
      // Past the previous kill, so each kill finds the restarted process at work.
      const target = Math.max(point, (killedAt.at(-1) ?? 0) + 1);
      await waitFor(async () => (await progress.read(pipeline)) >= target, { timeoutMs: progressTimeoutMs, intervalMs: 50, what: `${progress.what} to reach ${target} (${stage} restarted ${service.restarts} time(s))` });
      const at = await progress.read(pipeline);
      await service.kill9();
      killedAt.push(at);
      pipeline.note(`kill -9 ${stage} at ${at} ${progress.what}`);
      await service.start();
      pipeline.note(`${stage} ready again (restart ${service.restarts})`);
    }
  };
  const [traffic, killFailure] = await Promise.all([pipeline.traffic(requests), killer().then(() => undefined, (error: unknown) => (error instanceof Error ? error : new Error(String(error))))]);
  const observation = await finishCase(t, pipeline, `kill -9 ${stage} ×${KILLS}`, { requests, ok: traffic.ok, failed: traffic.failed }, () => ({ seed, 'killed at': killedAt.join('/') }), killFailure);
  assert.equal(traffic.failed, 0, 'users never notice a shadow stage dying');
  assert.equal(observation.gateway.droppedTotal, 0, 'the gateway dropped nothing (Kafka was up)');
  assert.equal(observation.published, requests, 'every request reached the request topic');
  assert.equal(service.kills, KILLS);
  // Issue 5 item 4: SIGKILL loses nothing, work is redone from the last commit and deduplicated.
  assert.equal(observation.counts.evaluated, requests, `every request evaluated despite ${KILLS} kills of ${stage}`);
  pipeline.passed();
}

// The three cases run side by side: most of their time is spent waiting for Kafka to notice a
// dead group member (its 30 s session timeout), which they can wait for together.
describe('kill -9 of a pipeline stage at random moments, restarted each time', { concurrency: true }, () => {
  it('replay: every request is evaluated exactly once and the conservation table balances', (t) => killRepeatedly(t, 'replay'));
  it('join: every request is evaluated exactly once and the conservation table balances', (t) => killRepeatedly(t, 'join'));
  it('evaluator: every request is evaluated exactly once and the conservation table balances', (t) => killRepeatedly(t, 'evaluator'));
});
