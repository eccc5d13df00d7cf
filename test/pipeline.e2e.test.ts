import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { EvaluationRecordSchema, PENDING, RequestEventSchema, ResponseEventSchema, decodeEvent } from '@shadow-replay/contracts';
import { Pipeline, buildExperimentReport, main, sendTraffic } from '@shadow-replay/cli';
import { OutcomeStore, silentLogger, waitFor, type ConsumedRecord } from '@shadow-replay/platform';
import { createSimServer } from '@shadow-replay/sim';
import { stringify } from 'yaml';
import { testScope } from './support/harness.js';

const REQUESTS = 200;

function idsOf(records: ConsumedRecord[], schema: typeof RequestEventSchema | typeof ResponseEventSchema | typeof EvaluationRecordSchema): string[] {
  return records.map((record) => {
    const decoded = decodeEvent(schema, record.value);
    assert.ok(decoded.ok, `undecodable record on ${record.topic}: ${decoded.ok ? '' : decoded.reason}`);
    return decoded.value.requestId;
  });
}

function assertExactlyOnce(ids: string[], expected: string[], what: string): void {
  assert.equal(ids.length, expected.length, `${what}: ${ids.length} records for ${expected.length} requests`);
  assert.deepEqual([...ids].sort(), [...expected].sort(), `${what}: every request id exactly once`);
}

describe('the pipeline end to end on real Kafka and Redis', () => {
  it('carries 200 requests from the gateway to evaluation records, each exactly once, with a balanced conservation table', async (t) => {
    // Simulated models stand in for GPUs; timeScale shortens their latency profile.
    const stableSim = createSimServer({ profile: 'stable', overrides: { timeScale: 0.05 } });
    const candidateSim = createSimServer({ profile: 'candidate', overrides: { timeScale: 0.05 } });
    const stable = await stableSim.start();
    const candidate = await candidateSim.start();
    t.after(() => Promise.all([stableSim.close(), candidateSim.close()]));

    const scope = testScope(t, (id) => ({
      // sendTraffic names each request (x-request-id) and the test finds the events by those names.
      gateway: { listen: { port: 0 }, stable: { name: 'stable', baseUrl: stable.url }, requestIds: 'client' },
      experiment: { id: `exp-${id}`, startFrom: 'earliest', candidates: [{ name: 'cand', baseUrl: candidate.url, rate: { concurrency: 16 } }] },
    }));
    const experimentId = scope.config.experiment?.id ?? '';
    const pipeline = new Pipeline(scope.config, silentLogger(), scope.env);
    t.after(() => pipeline.close());
    await pipeline.start();

    const traffic = await sendTraffic({ gatewayUrl: pipeline.gateway.url, count: REQUESTS, concurrency: 16, runId: scope.id });
    assert.equal(traffic.ok, REQUESTS, 'every user request succeeds');

    const outcomes = new OutcomeStore({ redis: scope.redis, keyPrefix: scope.config.redis.keyPrefix });
    await waitFor(
      async () => {
        const counts = await outcomes.counts(experimentId, 'cand');
        return counts.consumed === REQUESTS && counts[PENDING] === 0;
      },
      { timeoutMs: 120_000, intervalMs: 200, what: 'every request to reach its outcome' },
    );

    const topics = scope.config.kafka.topics;
    assertExactlyOnce(idsOf(await scope.read(topics.requests), RequestEventSchema), traffic.requestIds, 'request events');
    assertExactlyOnce(idsOf(await scope.read(topics.stableResponses), ResponseEventSchema), traffic.requestIds, 'stable responses');
    assertExactlyOnce(idsOf(await scope.read(topics.candidateResponses), ResponseEventSchema), traffic.requestIds, 'candidate responses');
    const evaluations = await scope.read(topics.evaluations);
    assertExactlyOnce(idsOf(evaluations, EvaluationRecordSchema), traffic.requestIds, 'evaluation records');
    // The live request's route and tenant travel with the candidate answer into each record (report slices).
    const tenants = new Set<string>();
    for (const record of evaluations) {
      const decoded = decodeEvent(EvaluationRecordSchema, record.value);
      assert.ok(decoded.ok);
      assert.equal(decoded.value.route, '/v1/chat/completions');
      tenants.add(decoded.value.tenant ?? 'none');
    }
    assert.deepEqual([...tenants].sort(), ['tenant-0', 'tenant-1', 'tenant-2'], 'tenants from the x-tenant-id header the gateway published');

    const report = await buildExperimentReport({
      experimentId,
      topics,
      keyPrefix: scope.config.redis.keyPrefix,
      addresses: { kafkaBrokers: scope.env.KAFKA_BROKERS?.split(',') ?? [], redisUrl: scope.env.REDIS_URL ?? '', schemaRegistryUrl: undefined },
      log: silentLogger(),
    });
    assert.equal(report.conservation.balanced, true, `conservation notes: ${report.conservation.notes.join('; ')}`);
    assert.equal(report.conservation.consumed, REQUESTS);
    assert.equal(report.conservation.outcomes.evaluated, REQUESTS);
    const arm = report.arms.find((entry) => entry.arm === 'cand');
    assert.ok(arm, 'the report has the candidate arm');
    assert.equal(arm.latency.e2eMs.stable.n, REQUESTS);
    assert.equal(arm.latency.e2eMs.candidate.n, REQUESTS);

    // The same report through the command line, as a user runs it.
    const dir = await mkdtemp(join(tmpdir(), 'shadow-report-'));
    const configFile = join(dir, 'config.yaml');
    await writeFile(configFile, stringify(scope.config));
    for (const format of ['json', 'md'] as const) {
      const out = join(dir, `report.${format}`);
      assert.equal(await main(['report', '--experiment', experimentId, '--config', configFile, '--format', format, '--out', out]), 0);
    }
    const fromCli = JSON.parse(await readFile(join(dir, 'report.json'), 'utf8')) as typeof report;
    for (const field of ['experimentId', 'window', 'generatedAt', 'conservation', 'arms']) assert.ok(field in fromCli, `report.json has ${field}`);
    assert.equal(fromCli.conservation.balanced, true);
    assert.equal(fromCli.conservation.consumed, REQUESTS);
    const markdown = await readFile(join(dir, 'report.md'), 'utf8');
    assert.ok(markdown.indexOf('Conservation') < markdown.indexOf('Latency'), 'the conservation table comes first');
  });

  it('counts failed candidate calls as candidate_error and still balances the table', async (t) => {
    const stableSim = createSimServer({ profile: 'fast' });
    // A seeded fault draw makes the failing requests the same on every run.
    const candidateSim = createSimServer({ profile: 'fast', overrides: { errorRate: 0.2, faultSeed: 7 } });
    const stable = await stableSim.start();
    const candidate = await candidateSim.start();
    t.after(() => Promise.all([stableSim.close(), candidateSim.close()]));
    const scope = testScope(t, (id) => ({
      gateway: { listen: { port: 0 }, stable: { name: 'stable', baseUrl: stable.url } },
      // No retries: each failed call must surface as one candidate_error.
      experiment: { id: `exp-${id}`, startFrom: 'earliest', candidates: [{ name: 'cand', baseUrl: candidate.url, retry: { attempts: 1 }, circuit: { window: 1000 } }] },
    }));
    const experimentId = scope.config.experiment?.id ?? '';
    const pipeline = new Pipeline(scope.config, silentLogger(), scope.env);
    t.after(() => pipeline.close());
    await pipeline.start();
    const traffic = await sendTraffic({ gatewayUrl: pipeline.gateway.url, count: 100, concurrency: 8, runId: scope.id });
    assert.equal(traffic.ok, 100);
    const outcomes = new OutcomeStore({ redis: scope.redis, keyPrefix: scope.config.redis.keyPrefix });
    await waitFor(
      async () => {
        const counts = await outcomes.counts(experimentId, 'cand');
        return counts.consumed === 100 && counts[PENDING] === 0;
      },
      { timeoutMs: 60_000, intervalMs: 200, what: 'every request to reach its outcome' },
    );
    const counts = await outcomes.counts(experimentId, 'cand');
    assert.ok(counts.candidate_error > 0, 'some candidate calls failed');
    assert.equal(counts.candidate_error, candidateSim.stats().byStatus['500'] ?? 0, 'one candidate_error per failed call');
    assert.equal(counts.candidate_error + counts.evaluated, 100);
    const failed = (await scope.read(scope.config.kafka.topics.candidateResponses))
      .map((record) => decodeEvent(ResponseEventSchema, record.value))
      .filter((decoded) => decoded.ok && decoded.value.outcome === 'error');
    assert.equal(failed.length, counts.candidate_error, 'every failure is published as a candidate ResponseEvent, never skipped');
    const report = await buildExperimentReport({
      experimentId,
      topics: scope.config.kafka.topics,
      keyPrefix: scope.config.redis.keyPrefix,
      addresses: { kafkaBrokers: scope.env.KAFKA_BROKERS?.split(',') ?? [], redisUrl: scope.env.REDIS_URL ?? '', schemaRegistryUrl: undefined },
      log: silentLogger(),
    });
    assert.equal(report.conservation.balanced, true, report.conservation.notes.join('; '));
    assert.equal(report.arms[0]?.verdict.status, 'fail', 'a 20% candidate error rate fails the error-rate gate');
  });
});
