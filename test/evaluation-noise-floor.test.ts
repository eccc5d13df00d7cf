/**
 * The noise floor with sampling noise (issue 6, "checked by"): the stable model samples at
 * temperature 0.7 and so disagrees with itself; a control arm asks it again. A candidate that is
 * the same model at another temperature must not be flagged; one that answers differently on 10
 * percentage points more requests than the control must be.
 *
 * Real sim servers on loopback stand in for the GPUs; answers are fetched with the platform's
 * chat client (as replay does), evaluated with `evaluatePair` and reported with `buildReport`
 * under the gates of an experiment configuration's defaults. Every request carries OpenAI's
 * `seed` (one per arm, as `transforms.params` would set it), which makes the sim's temperature
 * noise reproducible: the run is seeded end to end.
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { ExperimentConfigSchema, type ChatRequest, type EvaluationRecord, type ResponseEvent } from '@shadow-replay/contracts';
import { buildReport, evaluatePair, type ArmReport, type NoiseComparison } from '@shadow-replay/evaluation';
import { callChatCompletion } from '@shadow-replay/platform';
import { createSimServer, type SimProfileInput } from '@shadow-replay/sim';
import { Agent } from 'undici';

const REQUESTS = 2000;
/** Share of sampled answers with one word changed. */
const NOISE = 0.06;
/** Extra disagreement of the divergent candidate over the control, in rate. */
const EXTRA = 0.1;
const TEMPERATURE = 0.7;

/** An arm: which model answers and the parameters its requests carry. */
interface ArmSpec {
  name: string;
  url: string;
  params: { temperature: number; seed: number };
}

async function startSim(t: TestContext, profile: SimProfileInput): Promise<string> {
  const sim = createSimServer({ profile });
  const { url } = await sim.start();
  t.after(() => sim.close());
  return url;
}

async function answer(agent: Agent, arm: ArmSpec, requestId: string, experimentId: string): Promise<ResponseEvent> {
  const body: ChatRequest = {
    model: 'sim',
    messages: [{ role: 'user', content: `Request ${requestId}: summarise what the replay service does with a slow candidate.` }],
    stream: true,
    stream_options: { include_usage: true },
    ...arm.params,
  };
  const result = await callChatCompletion({ dispatcher: agent, url: `${arm.url}/v1/chat/completions`, body, totalMs: 10_000 });
  assert.equal(result.outcome, 'ok', `${arm.name} ${requestId}: ${result.error?.message ?? ''}`);
  return {
    schemaVersion: 1,
    requestId,
    ...(arm.name === 'stable' ? {} : { experimentId }),
    arm: arm.name,
    occurredAt: result.timing.sentAt,
    endpoint: { name: arm.name, model: result.response?.model ?? null },
    outcome: result.outcome,
    status: result.status,
    error: result.error,
    response: result.response,
    usage: result.usage,
    timing: result.timing,
    streamed: result.streamed,
    request: body,
  };
}

function noiseOf(arm: ArmReport | undefined): NoiseComparison {
  assert.ok(arm?.noise, `arm ${arm?.arm ?? '?'} has no noise comparison`);
  return arm.noise as unknown as NoiseComparison;
}

describe('the noise floor with a sampling stable model', () => {
  it('does not flag the same model at another temperature, and flags a candidate that differs on 10 points more answers than the control', async (t) => {
    const sampling = { ttftMs: { median: 0, p99: 0 }, timeScale: 0, temperatureNoise: NOISE, outputTokens: { mean: 40, sd: 10 } } as const;
    const stableUrl = await startSim(t, { name: 'stable', seed: 'stable', ...sampling });
    // Diverging on d of the prompts adds d·(1 − p)² of disagreement over the control's 1 − (1 − p)².
    const divergentUrl = await startSim(t, { name: 'divergent', seed: 'divergent', baseSeed: 'stable', divergence: EXTRA / (1 - NOISE) ** 2, ...sampling });
    const experiment = ExperimentConfigSchema.parse({
      id: 'noise-floor',
      candidates: [
        { name: 'control', baseUrl: stableUrl, control: true, transforms: { params: { temperature: TEMPERATURE, seed: 2 } } },
        { name: 'hotter', baseUrl: stableUrl, transforms: { params: { temperature: 1.0, seed: 3 } } },
        { name: 'divergent', baseUrl: divergentUrl, transforms: { params: { temperature: TEMPERATURE, seed: 4 } } },
      ],
    });
    const stable: ArmSpec = { name: 'stable', url: stableUrl, params: { temperature: TEMPERATURE, seed: 1 } };
    const arms: ArmSpec[] = experiment.candidates.map((candidate) => ({ name: candidate.name, url: candidate.baseUrl, params: candidate.transforms.params as ArmSpec['params'] }));

    const agent = new Agent({ connections: 32 });
    t.after(() => agent.close());
    const records: EvaluationRecord[] = [];
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < REQUESTS; i = next++) {
        const requestId = `nf-${String(i).padStart(4, '0')}`;
        const [stableAnswer, ...candidates] = await Promise.all([stable, ...arms].map((arm) => answer(agent, arm, requestId, experiment.id)));
        for (const candidate of candidates) {
          records.push(evaluatePair({ experimentId: experiment.id, requestId, arm: candidate.arm, stable: stableAnswer!, candidate, sources: { stable: { topic: 's', partition: 0, offset: String(i) }, candidate: { topic: 'c', partition: 0, offset: String(i) } }, evaluatorVersion: 'test', now: 1 }));
        }
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));

    const outcomes = Object.fromEntries(arms.map((arm) => [arm.name, { consumed: REQUESTS, evaluated: REQUESTS }]));
    const report = buildReport(
      { experimentId: experiment.id, window: { from: 0, to: 1 }, generatedAt: 2, records, outcomes },
      { ...experiment.verdict, controlArm: experiment.candidates.find((candidate) => candidate.control)?.name },
    );
    const byName = (name: string) => report.arms.find((arm) => arm.arm === name);
    const mismatch = (name: string) => 1 - (byName(name)?.quality.exactMatch.rate ?? 1);
    t.diagnostic(`exact mismatch with stable over ${REQUESTS} requests: control ${mismatch('control').toFixed(4)}, hotter ${mismatch('hotter').toFixed(4)}, divergent ${mismatch('divergent').toFixed(4)}`);

    // Stable really is noisy: asked twice, it disagrees with itself on about 1 − (1 − p)² ≈ 11.6%.
    assert.ok(Math.abs(mismatch('control') - (1 - (1 - NOISE) ** 2)) < 0.03, `control mismatch ${mismatch('control')}`);

    const hotter = byName('hotter');
    assert.ok(mismatch('hotter') > 3 * experiment.verdict.noise.absoluteThreshold, 'without the control, this much disagreement would look like a regression');
    assert.deepEqual(noiseOf(hotter).regressions, []);
    assert.ok(hotter?.verdict.reasons.some((reason) => reason.startsWith('no disagreement above the noise floor of control arm control')), hotter?.verdict.reasons.join(' | '));
    assert.ok(!hotter?.verdict.reasons.some((reason) => reason.includes("beyond the model's own noise")));

    const divergent = byName('divergent');
    const exact = noiseOf(divergent).metrics.find((metric) => metric.metric === 'exact_mismatch');
    assert.ok(exact !== undefined && Math.abs(exact.absolute - EXTRA) < 0.03, `the divergent candidate differs on ${exact?.absolute} more answers than the control`);
    assert.ok(noiseOf(divergent).regressions.includes('exact_mismatch'), JSON.stringify(noiseOf(divergent)));
    assert.equal(divergent?.verdict.status, 'fail');
    assert.ok(divergent?.verdict.reasons.some((reason) => reason.startsWith("disagrees with stable beyond the model's own noise (control arm control)")), divergent?.verdict.reasons.join(' | '));
  });
});
