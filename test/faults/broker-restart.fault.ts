import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { waitFor } from '@shadow-replay/platform';
import { mulberry32 } from '@shadow-replay/sim';
import { FaultPipeline, faultRequests, faultSeed, finishCase } from '../support/fault-pipeline.js';
import { localKafka } from '../support/local-kafka.js';

describe('the Kafka broker stops and restarts mid-run', () => {
  it('keeps answering users while Kafka is down and accounts every request that reached Kafka exactly once', async (t) => {
    const check = await localKafka();
    if (!check.ok) {
      t.skip(check.reason);
      return;
    }
    const { kafka } = check;
    // Runs before the pipeline's and the scope's cleanup (after() hooks run in order), which need the broker.
    t.after(async () => {
      if (!(await kafka.isUp())) await kafka.start();
    });
    const requests = faultRequests();
    const seed = faultSeed();
    const random = mulberry32(seed);
    // Traffic in three parts: before the stop (the stop lands while it is being consumed), while Kafka is down, after it is back.
    const before = Math.round(requests * (0.3 + 0.2 * random()));
    const during = Math.round(requests * (0.15 + 0.15 * random()));
    const after = requests - before - during;
    const stopAt = Math.max(1, Math.round(before * (0.2 + 0.6 * random())));
    t.diagnostic(`FAULT_SEED=${seed}: ${before} requests, broker stopped once replay consumed ${stopAt}; ${during} requests while it is down; ${after} after it is back`);

    const pipeline = await FaultPipeline.start(t);
    const timings: string[] = [];
    let stoppedAt = 0;
    const stopper = async () => {
      await waitFor(async () => (await pipeline.counts()).consumed >= stopAt, { timeoutMs: 120_000, intervalMs: 50, what: `replay to consume ${stopAt} requests` });
      const started = Date.now();
      pipeline.note(`stopping Kafka at ${(await pipeline.counts()).consumed} consumed`);
      await kafka.stop();
      stoppedAt = Date.now();
      timings.push(`stop took ${((stoppedAt - started) / 1000).toFixed(1)} s`);
      pipeline.note('Kafka stopped');
    };
    const [first] = await Promise.all([pipeline.traffic(before, 'a'), stopper()]);
    assert.equal(await kafka.isUp(), false, 'the broker is down');
    const second = await pipeline.traffic(during, 'b');
    timings.push(`${during} requests answered while down in ${((Date.now() - stoppedAt) / 1000).toFixed(1)} s`);
    // The outage lasts until the gateway gave up a send (its producer's retries run out after about
    // a minute), so the drop path is exercised and the consumers behind it lose the broker as long; bounded.
    const gaveUp = await waitFor(async () => ((await pipeline.gatewayCounts()).dropped.send_failed ?? 0) > 0, { timeoutMs: Math.max(0, stoppedAt + 75_000 - Date.now()), intervalMs: 250, what: 'the gateway to drop a batch it could not send' }).then(
      () => true,
      () => false,
    );
    // The broker is shared: another test run's `infra:up` may have started it again meanwhile.
    const upAgainAlready = await kafka.isUp();
    timings.push(`down for ${((Date.now() - stoppedAt) / 1000).toFixed(1)} s${gaveUp ? '' : ' (the gateway never gave up a send)'}${upAgainAlready ? ' (someone else started the broker meanwhile)' : ''}`);
    const startStarted = Date.now();
    await kafka.start();
    timings.push(`start took ${((Date.now() - startStarted) / 1000).toFixed(1)} s`);
    pipeline.note('Kafka started');
    const third = await pipeline.traffic(after, 'c');
    const parts = [first, second, third];
    const ok = parts.reduce((sum, part) => sum + part.ok, 0);
    const failed = parts.reduce((sum, part) => sum + part.failed, 0);
    t.diagnostic(`broker: ${timings.join(', ')}`);

    const observation = await finishCase(t, pipeline, 'Kafka broker restart', { requests, ok, failed }, () => ({ seed }));
    t.diagnostic(`gateway: sent ${observation.gateway.sent} events, dropped ${JSON.stringify(observation.gateway.dropped)}`);
    assert.equal(second.failed, 0, 'users get answers while Kafka is down');
    assert.equal(failed, 0, 'no user request failed');
    assert.ok(requests - observation.published <= observation.gateway.droppedTotal, `every request missing from the topic (${requests - observation.published}) is counted as dropped by the gateway (${observation.gateway.droppedTotal} events)`);
    pipeline.passed();
  });
});
