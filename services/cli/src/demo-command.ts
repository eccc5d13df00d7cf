import { randomUUID } from 'node:crypto';
import { join as joinPath } from 'node:path';
import { PENDING, type ShadowConfig } from '@shadow-replay/contracts';
import { OutcomeStore, createRedis, silentLogger, waitFor, type Logger } from '@shadow-replay/platform';
import { createSimServer } from '@shadow-replay/sim';
import { Pipeline } from './pipeline.js';
import { buildExperimentReport, renderReport, writeOut } from './report-command.js';
import { addresses, cliEnv, parseConfig } from './settings.js';
import { sendTraffic } from './traffic.js';

export interface DemoOptions {
  requests: number;
  out: string;
  concurrency: number;
  print: (line: string) => void;
  log?: Logger;
}

/**
 * The whole pipeline on local infrastructure with simulated models standing in for GPUs:
 * traffic through the gateway, wait until every request reached its outcome, write the report.
 */
export async function runDemo(options: DemoOptions): Promise<number> {
  const log = options.log ?? silentLogger();
  const runId = `demo-${new Date().toISOString().replace(/[-:TZ.]/g, '').slice(0, 14)}-${randomUUID().slice(0, 6)}`;
  const stableSim = createSimServer({ profile: 'stable' });
  const candidateSim = createSimServer({ profile: 'candidate' });
  const stable = await stableSim.start();
  const candidate = await candidateSim.start();
  options.print(`simulated models (stand-ins for GPUs): stable ${stable.url}, candidate ${candidate.url}`);
  const config: ShadowConfig = parseConfig(
    {
      kafka: {
        clientId: runId,
        topics: {
          requests: `${runId}.requests`,
          stableResponses: `${runId}.responses.stable`,
          candidateResponses: `${runId}.responses.candidate`,
          evaluations: `${runId}.evaluations`,
          deadLetter: `${runId}.dlq`,
        },
      },
      redis: { keyPrefix: `shadow-${runId}`, evalQueue: `eval-${runId}` },
      gateway: { listen: { port: 0 }, stable: { name: 'stable', baseUrl: stable.url } },
      experiment: {
        id: runId,
        startFrom: 'earliest',
        candidates: [
          { name: 'candidate', baseUrl: candidate.url, rate: { rps: 100, concurrency: 16 } },
          // The stable model asked again: its disagreement with itself is the noise floor.
          { name: 'control', baseUrl: stable.url, control: true, rate: { rps: 100, concurrency: 16 } },
        ],
        verdict: {
          minSamples: 30,
          // The demo's 400 requests (300 before p99 intervals needed 368 pairs) cannot decide the
          // default 0.5-point error gate: with no error on either side the 95% interval of the
          // increase is still about ±1 point (±1.3 with 300), so every arm would be inconclusive.
          // 2 points is a gate 300 or 400 requests can decide (pass with no errors, fail on a
          // candidate that fails a few percent of its calls).
          maxErrorRateIncrease: 0.02,
        },
      },
      replay: { listen: { port: 0 } },
      join: { listen: { port: 0 } },
      evaluator: { listen: { port: 0 } },
    },
    'demo configuration',
  );
  const pipeline = new Pipeline(config, log, cliEnv());
  const redis = createRedis(addresses().redisUrl, 'shadow-demo');
  try {
    options.print(`starting gateway, replay, join and evaluator (experiment ${runId})…`);
    await pipeline.start();
    options.print(`gateway listening on ${pipeline.gateway.url}; sending ${options.requests} requests…`);
    const started = Date.now();
    const traffic = await sendTraffic({
      gatewayUrl: pipeline.gateway.url,
      count: options.requests,
      concurrency: options.concurrency,
      runId,
      onProgress: progressPrinter(options.requests, 'sent', options.print),
    });
    options.print(`traffic: ${traffic.ok} answered, ${traffic.failed} failed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    const outcomes = new OutcomeStore({ redis, keyPrefix: config.redis.keyPrefix });
    const drained = progressPrinter(options.requests, 'settled', options.print);
    await waitFor(
      async () => {
        const arms = await Promise.all(['candidate', 'control'].map((arm) => outcomes.counts(runId, arm)));
        drained(Math.min(...arms.map((counts) => counts.consumed - counts[PENDING])));
        return arms.every((counts) => counts.consumed >= traffic.ok && counts[PENDING] === 0);
      },
      { timeoutMs: 120_000, intervalMs: 250, what: 'the pipeline to drain (every request at its outcome)' },
    );
    const report = await buildExperimentReport({
      experimentId: runId,
      topics: config.kafka.topics,
      keyPrefix: config.redis.keyPrefix,
      gates: config.experiment?.verdict,
      controlArm: config.experiment?.candidates.find((candidate) => candidate.control)?.name,
      addresses: addresses(),
      log,
    });
    await writeOut(joinPath(options.out, 'report.json'), renderReport(report, 'json'));
    await writeOut(joinPath(options.out, 'report.md'), renderReport(report, 'md'));
    await writeOut(joinPath(options.out, 'report.html'), renderReport(report, 'html'));
    printSummary(report, options);
    return report.conservation.balanced ? 0 : 1;
  } finally {
    await pipeline.close().catch((error: unknown) => log.warn({ err: error }, 'pipeline close failed'));
    await redis.quit().catch(() => undefined);
    await stableSim.close();
    await candidateSim.close();
  }
}

function printSummary(report: Awaited<ReturnType<typeof buildExperimentReport>>, options: DemoOptions): void {
  const c = report.conservation;
  options.print('');
  options.print(`conservation: ${c.balanced ? 'BALANCED' : 'NOT BALANCED'} (consumed ${c.consumed}, ${Object.entries(c.outcomes).filter(([, n]) => n > 0).map(([name, n]) => `${name} ${n}`).join(', ')})`);
  for (const arm of report.arms) {
    const e2e = arm.latency.e2eMs;
    options.print(`arm ${arm.arm}: verdict ${arm.verdict.status.toUpperCase()}; E2E p50 stable ${fmt(e2e.stable.p50)} ms vs candidate ${fmt(e2e.candidate.p50)} ms; p99 ${fmt(e2e.stable.p99)} vs ${fmt(e2e.candidate.p99)} ms; exact match ${pct(arm.quality.exactMatchRate)}`);
    for (const reason of arm.verdict.reasons) options.print(`  - ${reason}`);
  }
  options.print(`report: ${joinPath(options.out, 'report.json')}, ${joinPath(options.out, 'report.md')} and ${joinPath(options.out, 'report.html')}`);
}

function progressPrinter(total: number, verb: string, print: (line: string) => void): (done: number) => void {
  let lastTenth = -1;
  return (done) => {
    const tenth = Math.floor((done / Math.max(1, total)) * 10);
    if (tenth > lastTenth) {
      lastTenth = tenth;
      print(`  ${verb} ${done}/${total}`);
    }
  };
}

function fmt(value: number | null | undefined): string {
  return value === null || value === undefined ? '–' : value.toFixed(1);
}

function pct(value: number | null | undefined): string {
  return value === null || value === undefined ? '–' : `${(value * 100).toFixed(1)}%`;
}
