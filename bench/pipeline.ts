/**
 * `npm run bench:pipeline`: end-to-end throughput of the whole pipeline on this machine.
 *
 * Each run gets fresh topics, Redis prefix and queue, starts two simulated models (profile
 * `fast`, answering at once: stand-ins for GPUs, so the figures are the pipeline's own ceiling)
 * and the four services in this one process, then sends the same load three ways:
 *  1. DIRECTLY to the stable sim: the baseline, no gateway;
 *  2. through a second gateway whose events go to topics nobody reads: the gateway's own cost;
 *  3. through the pipeline's gateway, watching the outcome counters in Redis until every
 *     request is settled (`consumed` reached and `pending` = 0): the live path while replay,
 *     join and evaluator compete for the same process, and the end-to-end drain.
 * Every path is warmed up first. The gateway's cost is reported as ratios to the baseline of the
 * same run, because the machine is shared and absolute figures drift between runs.
 */
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { PENDING, ShadowConfigSchema, evalQueuePrefix, type ShadowConfig } from '@shadow-replay/contracts';
import { Pipeline } from '@shadow-replay/cli';
import { GatewayService, gatewaySettings } from '@shadow-replay/gateway';
import { OutcomeStore, type addressesFromEnv, createKafka, createRedis, ensureTopics, silentLogger, waitFor, type OutcomeCounts } from '@shadow-replay/platform';
import { createSimServer, type SimServer, type SimStats } from '@shadow-replay/sim';
import { Queue } from 'bullmq';
import { request } from 'undici';
import { integerFlag, log, startBench } from './lib/cli.js';
import { runLoad, type LoadOptions, type LoadResult } from './lib/load.js';
import { fmt, machineInfo, median, ratio, renderTable, summarizeLatency, writeResults, type Column, type LatencySummary } from './lib/report.js';
import { benchScope, cleanupScope, type CleanupReport } from './lib/scope.js';

const USAGE = `Usage: npm run bench:pipeline [-- --requests N] [--concurrency C] [--runs R] [--warmup W]

End-to-end throughput of gateway → Kafka → replay → join → evaluator on this machine, with
simulated models (profile "fast", instant answers) standing in for GPUs, all in one process.
Needs Kafka and Redis (KAFKA_BROKERS, default 127.0.0.1:9092; REDIS_URL, default
redis://127.0.0.1:6379). Prints a table and writes bench/results/pipeline-<timestamp>.json.

  --requests N      requests per run and path (default 2000)
  --concurrency C   requests in flight from the load generator (default 32)
  --runs R          runs, each with fresh topics, Redis prefix and queue (default 3)
  --warmup W        warm-up requests per path and run, not measured (default min(500, N/4))
  --help            this text
`;

const CANDIDATE = 'candidate';
/** Candidate calls in flight per replay instance; the sim answers at once, so this is the replay's own limit. */
const CANDIDATE_CONCURRENCY = 32;
const POLL_INTERVAL_MS = 50;
const REQUEST_TIMEOUT_MS = 30_000;
const PROGRESS_EVERY_MS = 1_000;

interface Options {
  requests: number;
  concurrency: number;
  runs: number;
  warmup: number;
}

/** Phase time and how busy this process was meanwhile (one event loop runs everything). */
interface ProcessLoad {
  wallMs: number;
  /** Fraction of the wall time the event loop was busy (1 = saturated). */
  eventLoopUtilization: number;
  /** User + system CPU of the process over wall time; up to 100 × cores. */
  cpuPercent: number;
}

interface PathFigures {
  sent: number;
  ok: number;
  failed: number;
  failures: Record<string, number>;
  cutShort: boolean;
  /** Successful requests per second, from the first request issued to the last body read. */
  throughputRps: number | null;
  elapsedMs: number;
  latencyMs: LatencySummary;
  process: ProcessLoad;
  /** Chat completions the stable sim received during the phase (= ok + failed when nothing is lost). */
  stableSimRequests: number;
}

interface DrainSample {
  /** Since the first gateway request. */
  atMs: number;
  consumed: number;
  pending: number;
  settled: number;
  gatewayBuffer: number;
  evalWaiting: number;
  evalActive: number;
}

interface DrainFigures {
  /** Requests that had to be settled: the measured gateway requests sent. */
  requests: number;
  drained: boolean;
  /** First gateway request → every request settled. */
  fromFirstRequestMs: number | null;
  /** Requests settled per second over that span. */
  endToEndRps: number | null;
  /** Last user response → last request settled. */
  lagAfterLastResponseMs: number | null;
  /** Settled already when the last user response came back. */
  settledAtLastResponse: number;
  /** Milliseconds from the first request, each observed with the poll interval's resolution. */
  milestonesMs: { lastResponse: number; gatewayBufferEmpty: number | null; allConsumed: number | null; allSettled: number | null };
  peaks: { pending: number; gatewayBuffer: number; evalWaiting: number };
  /** Final counters of the candidate arm, measured requests only (warm-up subtracted). */
  outcomes: Record<string, number>;
  gatewayPublish: { sent: number | null; dropped: number | null };
  /** Calls the candidate sim received: one per request when replay called each exactly once. */
  candidateSim: { requests: number; byStatus: Record<string, number> };
  /** Last user response → settled (the part of the drain not overlapping the load). */
  tailProcess: ProcessLoad | null;
  pollIntervalMs: number;
  series: DrainSample[];
}

interface Ratios {
  throughput: number | null;
  p50: number | null;
  p99: number | null;
}

interface RunFigures {
  run: number;
  id: string;
  /** The configuration the pipeline ran with, defaults filled in (stage concurrencies, buffer sizes…). */
  config: ShadowConfig | null;
  startupMs: number;
  warmup: { requests: number; settledMs: number | null };
  /** The load sent straight to the stable sim: the baseline. */
  direct: PathFigures | null;
  /** Through a gateway with nothing behind it consuming (its events go to topics nobody reads). */
  gatewayAlone: PathFigures | null;
  /** Through the pipeline's gateway while replay, join and evaluator work in the same process. */
  gatewayPipeline: PathFigures | null;
  /** Each gateway path ÷ direct, same run. */
  overhead: { gatewayAlone: Ratios; gatewayPipeline: Ratios };
  drain: DrainFigures | null;
  cleanup: CleanupReport | null;
  /** What this process still holds once the run closed everything: growth across runs is a leak. */
  afterRun: { heapUsedMb: number; activeResources: Record<string, number> } | null;
  error: string | null;
}

function parseOptions(argv: string[]): Options | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      requests: { type: 'string', default: '2000' },
      concurrency: { type: 'string', default: '32' },
      runs: { type: 'string', default: '3' },
      warmup: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return 'help';
  const requests = integerFlag('--requests', values.requests);
  return {
    requests,
    concurrency: integerFlag('--concurrency', values.concurrency),
    runs: integerFlag('--runs', values.runs),
    warmup: values.warmup === undefined ? Math.min(500, Math.ceil(requests / 4)) : integerFlag('--warmup', values.warmup, 0),
  };
}


async function main(argv: string[]): Promise<number> {
  const start = startBench(argv, { usage: USAGE, parse: parseOptions, finishes: 'the current step', log });
  if (typeof start === 'number') return start;
  const { options, addresses, signal } = start;

  const startedAt = new Date();
  const machine = machineInfo();
  const drainTimeoutMs = 60_000 + 30 * options.requests;
  const parameters = {
    ...options,
    candidateConcurrency: CANDIDATE_CONCURRENCY,
    partitions: 3,
    simProfile: 'fast',
    drainTimeoutMs,
    pollIntervalMs: POLL_INTERVAL_MS,
    requestTimeoutMs: REQUEST_TIMEOUT_MS,
    kafkaBrokers: addresses.kafkaBrokers,
    redisUrl: addresses.redisUrl,
  };
  log(`bench:pipeline — ${machine.cpus} CPUs (${machine.cpuModel}), Node ${machine.node}, load average ${machine.loadAverage.join(' ')}`);
  log(`${options.runs} run(s) × ${options.requests} requests per path at concurrency ${options.concurrency} (+${options.warmup} warm-up); Kafka ${addresses.kafkaBrokers.join(',')}, Redis ${addresses.redisUrl}`);
  log('the models are SIMULATED (sim profile "fast", instant answers) — stand-ins for GPUs; load generator, sims, Kafka clients and all four services share this one process');

  const runs: RunFigures[] = [];
  for (let run = 1; run <= options.runs && !signal.aborted; run++) {
    const figures = await runOnce(run, options, { addresses, drainTimeoutMs, signal: signal });
    runs.push(figures);
    if (figures.direct === null && figures.error !== null) {
      log(`run ${run} failed before measuring anything; not trying the others. Are Kafka (${addresses.kafkaBrokers.join(',')}) and Redis (${addresses.redisUrl}) up? (npm run infra:status)`);
      break;
    }
  }

  const summary = medianRow(runs);
  process.stdout.write(`\n${renderTables(runs, summary)}\n`);
  const path = await writeResults('pipeline', startedAt, {
    benchmark: 'pipeline',
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    note: 'Models are simulated (@shadow-replay/sim profile "fast": instant answers), standing in for GPUs. The load generator, both sims and the four services run in one Node.js process; Kafka and Redis run on the same machine. Compare ratios within a run, not absolute figures between machines.',
    machine,
    parameters,
    interrupted: signal.aborted,
    median: summary,
    runs,
  });
  process.stdout.write(`\nresults: ${path}\n`);
  const clean = runs.length === options.runs && runs.every((run) => run.error === null && run.drain?.drained === true && [run.direct, run.gatewayAlone, run.gatewayPipeline].every((path) => path?.failed === 0));
  if (!clean) log('some runs did not complete cleanly (failed requests, drain timeout or interruption): see "error" and "failures" in the JSON');
  return signal.aborted ? 130 : clean ? 0 : 1;
}

interface RunContext {
  addresses: ReturnType<typeof addressesFromEnv>;
  drainTimeoutMs: number;
  signal: AbortSignal;
}

async function runOnce(run: number, options: Options, context: RunContext): Promise<RunFigures> {
  const scope = benchScope('pipeline');
  const figures: RunFigures = {
    run,
    id: scope.id,
    config: null,
    startupMs: 0,
    warmup: { requests: options.warmup, settledMs: null },
    direct: null,
    gatewayAlone: null,
    gatewayPipeline: null,
    overhead: { gatewayAlone: noRatios(), gatewayPipeline: noRatios() },
    drain: null,
    cleanup: null,
    afterRun: null,
    error: null,
  };
  const tag = `run ${run}/${options.runs}`;
  log(`\n${tag}: ${scope.id}`);
  const stableSim = createSimServer({ profile: 'fast' });
  const candidateSim = createSimServer({ profile: 'fast' });
  const redis = createRedis(context.addresses.redisUrl, `${scope.id}-bench`);
  let pipeline: Pipeline | undefined;
  let soloGateway: GatewayService | undefined;
  let queue: Queue | undefined;
  try {
    const stable = await stableSim.start();
    const candidate = await candidateSim.start();
    const raw = {
      kafka: { clientId: scope.id, topics: scope.topics, partitions: 3 },
      redis: { keyPrefix: scope.keyPrefix, evalQueue: scope.evalQueue },
      gateway: { listen: { port: 0 }, stable: { name: 'stable', baseUrl: stable.url } },
      experiment: { id: scope.id, startFrom: 'earliest', candidates: [{ name: CANDIDATE, baseUrl: candidate.url, rate: { concurrency: CANDIDATE_CONCURRENCY } }] },
      replay: { listen: { port: 0 } },
      join: { listen: { port: 0 } },
      evaluator: { listen: { port: 0 } },
    };
    const config: ShadowConfig = ShadowConfigSchema.parse(raw);
    figures.config = config;
    const env = { KAFKA_BROKERS: context.addresses.kafkaBrokers.join(','), REDIS_URL: context.addresses.redisUrl, LOG_LEVEL: 'silent' };
    const startBegan = performance.now();
    pipeline = new Pipeline(config, silentLogger(), env);
    await pipeline.start();
    figures.startupMs = performance.now() - startBegan;

    // The same gateway on topics nobody reads: what the gateway costs when the stages behind
    // it are idle, to tell its own cost from their competition for this process's CPU.
    const soloTopics = { requests: `${scope.id}.solo.requests`, stableResponses: `${scope.id}.solo.responses.stable` };
    const soloConfig = ShadowConfigSchema.parse({ ...raw, kafka: { ...raw.kafka, clientId: `${scope.id}-solo`, topics: { ...scope.topics, ...soloTopics } } });
    const kafka = createKafka({ brokers: context.addresses.kafkaBrokers, clientId: `${scope.id}-bench`, log: silentLogger() });
    await ensureTopics(kafka, Object.values(soloTopics), soloConfig.kafka.partitions);
    soloGateway = new GatewayService({ settings: gatewaySettings(soloConfig, env), log: silentLogger() });
    await soloGateway.start();
    log(`${tag}: sims (fast profile) at ${stable.url} and ${candidate.url}; pipeline started in ${fmt(figures.startupMs / 1000, 1)} s (gateway ${pipeline.gateway.url}); gateway alone at ${soloGateway.url}`);

    const watch = new DrainWatch({
      outcomes: new OutcomeStore({ redis, keyPrefix: scope.keyPrefix }),
      queue: (queue = new Queue(scope.evalQueue, { connection: redis, prefix: evalQueuePrefix(scope.keyPrefix) })),
      experimentId: scope.id,
      bufferDepth: () => pipeline?.gateway.bufferDepth ?? 0,
    });
    const load = { concurrency: options.concurrency, phaseDeadlineMs: 120_000 + 20 * options.requests, requestTimeoutMs: REQUEST_TIMEOUT_MS, signal: context.signal };
    const paths = { direct: stable.url, gatewayAlone: soloGateway.url, gatewayPipeline: pipeline.gateway.url };
    const soloBuffer = soloGateway;

    if (options.warmup > 0) {
      await runLoad({ ...load, baseUrl: paths.direct, count: options.warmup, idPrefix: `${scope.id}-warm-direct` });
      await runLoad({ ...load, baseUrl: paths.gatewayAlone, count: options.warmup, idPrefix: `${scope.id}-warm-solo` });
      const warm = await runLoad({ ...load, baseUrl: paths.gatewayPipeline, count: options.warmup, idPrefix: `${scope.id}-warm` });
      const settled = await watch.until(warm.sent, { t0: warm.firstStartAt, timeoutMs: context.drainTimeoutMs, signal: context.signal });
      if (context.signal.aborted) return figures;
      figures.warmup.settledMs = settled.settledAtMs;
      log(`${tag}: warm-up ${options.warmup} requests on each path; the pipeline's settled after ${fmt((settled.settledAtMs ?? NaN) / 1000, 1)} s`);
      if (settled.settledAtMs === null) throw new Error(`warm-up did not settle within ${context.drainTimeoutMs} ms`);
    }
    const baseline = await watch.counts();

    stableSim.resetStats();
    figures.direct = await measurePath(`${tag} direct`, options.requests, stableSim, () =>
      runLoad({ ...load, baseUrl: paths.direct, count: options.requests, idPrefix: `${scope.id}-direct`, onProgress: progress(`${tag} direct`, options.requests) }),
    );
    if (context.signal.aborted) return figures;

    stableSim.resetStats();
    figures.gatewayAlone = await measurePath(`${tag} gateway alone`, options.requests, stableSim, async () => {
      const result = await runLoad({ ...load, baseUrl: paths.gatewayAlone, count: options.requests, idPrefix: `${scope.id}-solo`, onProgress: progress(`${tag} gateway alone`, options.requests) });
      // Its publishing is part of its cost; it must not spill into the next phase.
      await waitFor(() => soloBuffer.bufferDepth === 0, { timeoutMs: 30_000, intervalMs: 10, what: 'the lone gateway to empty its publish buffer' });
      return result;
    });
    if (context.signal.aborted) return figures;

    stableSim.resetStats();
    candidateSim.resetStats();
    const through = await measureThroughPipeline({ tag, options, context, load, url: paths.gatewayPipeline, idPrefix: `${scope.id}-gw`, watch, baseline, stableSim });
    figures.gatewayPipeline = through.path;
    figures.overhead = { gatewayAlone: ratios(figures.gatewayAlone, figures.direct), gatewayPipeline: ratios(figures.gatewayPipeline, figures.direct) };
    const published = await scrapeGatewayPublish(pipeline.gateway.url);
    figures.drain = drainFigures({ ...through, baseline, finalCounts: await watch.counts(), published, candidateSim: candidateSim.stats() });
    const d = figures.drain;
    log(
      d.drained
        ? `${tag}: drained ${d.requests} requests in ${fmt((d.fromFirstRequestMs ?? NaN) / 1000, 2)} s from the first request (${fmt(d.endToEndRps, 0)} req/s end to end), ${fmt((d.lagAfterLastResponseMs ?? NaN) / 1000, 2)} s after the last response`
        : `${tag}: NOT drained within ${context.drainTimeoutMs} ms (${d.outcomes.consumed ?? 0} consumed, ${d.outcomes[PENDING] ?? 0} pending; gateway sent ${published.sent ?? '?'} events, dropped ${published.dropped ?? '?'})`,
    );
  } catch (error) {
    figures.error = error instanceof Error ? error.message : String(error);
    log(`${tag}: failed: ${figures.error}`);
  } finally {
    await soloGateway?.close().catch((error: unknown) => log(`${tag}: lone gateway close failed: ${String(error)}`));
    await pipeline?.close().catch((error: unknown) => log(`${tag}: pipeline close failed: ${String(error)}`));
    await queue?.close().catch(() => undefined);
    figures.cleanup = await cleanupScope(scope, { kafkaBrokers: context.addresses.kafkaBrokers, redis });
    log(`${tag}: cleaned up ${figures.cleanup.topicsDeleted} topics, ${figures.cleanup.groupsDeleted} consumer groups, ${figures.cleanup.redisKeysDeleted} Redis keys${figures.cleanup.problems.length > 0 ? ` (problems: ${figures.cleanup.problems.join('; ')})` : ''}`);
    await redis.quit().catch(() => undefined);
    await Promise.all([stableSim.close(), candidateSim.close()]);
    figures.afterRun = processHoldings();
  }
  return figures;
}

function processHoldings(): { heapUsedMb: number; activeResources: Record<string, number> } {
  const activeResources: Record<string, number> = {};
  for (const name of process.getActiveResourcesInfo()) activeResources[name] = (activeResources[name] ?? 0) + 1;
  return { heapUsedMb: Math.round(process.memoryUsage().heapUsed / 1024 / 1024), activeResources };
}

function noRatios(): Ratios {
  return { throughput: null, p50: null, p99: null };
}

function ratios(path: PathFigures, direct: PathFigures): Ratios {
  return { throughput: ratio(path.throughputRps, direct.throughputRps), p50: ratio(path.latencyMs.p50, direct.latencyMs.p50), p99: ratio(path.latencyMs.p99, direct.latencyMs.p99) };
}

function describePath(path: PathFigures): string {
  return `${path.ok} ok, ${path.failed} failed; ${fmt(path.throughputRps, 0)} req/s, p50 ${fmt(path.latencyMs.p50, 2)} ms, p99 ${fmt(path.latencyMs.p99, 2)} ms, event loop busy ${fmt(path.process.eventLoopUtilization * 100, 0)}%`;
}

/**
 * Sends the load through the pipeline's gateway and, from the first request, samples the
 * accounting until every request is settled: the stages behind the gateway work while it serves.
 */
async function measureThroughPipeline(input: {
  tag: string;
  options: Options;
  context: RunContext;
  load: Omit<LoadOptions, 'baseUrl' | 'count' | 'idPrefix'>;
  url: string;
  idPrefix: string;
  watch: DrainWatch;
  baseline: OutcomeCounts;
  stableSim: SimServer;
}) {
  const { tag, options, context, watch, baseline } = input;
  const label = `${tag} gateway + pipeline`;
  const settledBefore = baseline.consumed - baseline[PENDING];
  log(`  ${label}: sending ${options.requests} requests…`);
  const loadMeter = processMeter();
  const t0 = performance.now();
  let lastResponseMs: number | undefined;
  let tailMeter: (() => ProcessLoad) | undefined;
  let nextDrainLine = 0;
  const loadDone = runLoad({ ...input.load, baseUrl: input.url, count: options.requests, idPrefix: input.idPrefix, onProgress: progress(label, options.requests) }).then((result) => {
    lastResponseMs = result.lastEndAt - t0;
    return result;
  });
  const drainDone = watch.until(baseline.consumed + options.requests, {
    t0,
    timeoutMs: context.drainTimeoutMs,
    signal: context.signal,
    onSample: (sample) => {
      if (lastResponseMs === undefined) return;
      tailMeter ??= processMeter();
      const since = sample.atMs - lastResponseMs;
      if (since >= nextDrainLine) {
        nextDrainLine = since + PROGRESS_EVERY_MS;
        log(`  ${tag} drain: ${sample.settled - settledBefore}/${options.requests} settled, ${sample.pending} pending, gateway buffer ${sample.gatewayBuffer}, eval queue ${sample.evalWaiting} waiting (+${fmt(since / 1000, 1)} s after the last response)`);
      }
    },
  });
  const load = await loadDone;
  const path = pathFigures(load, loadMeter(), input.stableSim.stats());
  log(`  ${label}: ${describePath(path)}; waiting for the pipeline to drain…`);
  const drain = await drainDone;
  return { path, requests: load.sent, lastResponseMs: load.lastEndAt - t0, ...drain, tailProcess: tailMeter?.() ?? null };
}

async function measurePath(label: string, count: number, sim: SimServer, send: () => Promise<LoadResult>): Promise<PathFigures> {
  log(`  ${label}: sending ${count} requests…`);
  const meter = processMeter();
  const result = await send();
  const figures = pathFigures(result, meter(), sim.stats());
  log(`  ${label}: ${describePath(figures)}`);
  return figures;
}

function pathFigures(result: LoadResult, load: ProcessLoad, sim: SimStats): PathFigures {
  const elapsedMs = result.lastEndAt - result.firstStartAt;
  return {
    sent: result.sent,
    ok: result.ok,
    failed: result.failed,
    failures: result.failures,
    cutShort: result.cutShort,
    throughputRps: elapsedMs > 0 ? result.ok / (elapsedMs / 1000) : null,
    elapsedMs,
    latencyMs: summarizeLatency(result.latenciesMs),
    process: load,
    stableSimRequests: sim.requestsTotal,
  };
}

function processMeter(): () => ProcessLoad {
  const elu = performance.eventLoopUtilization();
  const cpu = process.cpuUsage();
  const began = performance.now();
  return () => {
    const wallMs = performance.now() - began;
    const used = process.cpuUsage(cpu);
    return {
      wallMs,
      eventLoopUtilization: performance.eventLoopUtilization(elu).utilization,
      cpuPercent: wallMs > 0 ? ((used.user + used.system) / 1000 / wallMs) * 100 : 0,
    };
  };
}

/** A progress line at most once a second while a phase runs (short phases only get their summary line). */
function progress(label: string, total: number): (done: number) => void {
  let nextAt = performance.now() + PROGRESS_EVERY_MS;
  return (done) => {
    const now = performance.now();
    if (now >= nextAt && done < total) {
      nextAt = now + PROGRESS_EVERY_MS;
      log(`  ${label}: ${done}/${total} answered`);
    }
  };
}

/** Polls the candidate arm's outcome counters, the evaluation queue and the gateway buffer. */
class DrainWatch {
  readonly #options: { outcomes: OutcomeStore; queue: Queue; experimentId: string; bufferDepth: () => number };

  constructor(options: { outcomes: OutcomeStore; queue: Queue; experimentId: string; bufferDepth: () => number }) {
    this.#options = options;
  }

  counts(): Promise<OutcomeCounts> {
    return this.#options.outcomes.counts(this.#options.experimentId, CANDIDATE);
  }

  /** Samples until `consumed ≥ target` with nothing pending, the timeout or the signal. */
  async until(
    target: number,
    options: { t0: number; timeoutMs: number; signal: AbortSignal; onSample?: (sample: DrainSample) => void },
  ): Promise<{ samples: DrainSample[]; consumedAtMs: number | null; settledAtMs: number | null }> {
    const samples: DrainSample[] = [];
    let consumedAtMs: number | null = null;
    const deadline = performance.now() + options.timeoutMs;
    while (!options.signal.aborted && performance.now() < deadline) {
      const [counts, jobs] = await Promise.all([this.counts(), this.#options.queue.getJobCounts('waiting', 'active')]);
      const sample: DrainSample = {
        atMs: performance.now() - options.t0,
        consumed: counts.consumed,
        pending: counts[PENDING],
        settled: counts.consumed - counts[PENDING],
        gatewayBuffer: this.#options.bufferDepth(),
        evalWaiting: jobs.waiting ?? 0,
        evalActive: jobs.active ?? 0,
      };
      samples.push(sample);
      options.onSample?.(sample);
      if (consumedAtMs === null && sample.consumed >= target) consumedAtMs = sample.atMs;
      if (sample.consumed >= target && sample.pending === 0) return { samples, consumedAtMs, settledAtMs: sample.atMs };
      await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
    }
    return { samples, consumedAtMs, settledAtMs: null };
  }
}

function drainFigures(input: {
  requests: number;
  baseline: OutcomeCounts;
  finalCounts: OutcomeCounts;
  samples: DrainSample[];
  settledAtMs: number | null;
  consumedAtMs: number | null;
  lastResponseMs: number;
  published: { sent: number | null; dropped: number | null };
  candidateSim: SimStats;
  tailProcess: ProcessLoad | null;
}): DrainFigures {
  const { samples, settledAtMs, lastResponseMs, baseline } = input;
  const atLastResponse = samples.filter((sample) => sample.atMs <= lastResponseMs).at(-1);
  const outcomes: Record<string, number> = {};
  for (const [name, value] of Object.entries(input.finalCounts)) {
    const measured = value - (baseline[name as keyof OutcomeCounts] ?? 0);
    if (measured !== 0 || name === 'consumed' || name === PENDING) outcomes[name] = measured;
  }
  // The series is relative to the baseline too, so it reads 0…requests.
  const series = samples.map((sample) => ({ ...sample, consumed: sample.consumed - baseline.consumed, settled: sample.settled - (baseline.consumed - baseline[PENDING]) }));
  return {
    requests: input.requests,
    drained: settledAtMs !== null,
    fromFirstRequestMs: settledAtMs,
    endToEndRps: settledAtMs !== null && settledAtMs > 0 ? input.requests / (settledAtMs / 1000) : null,
    lagAfterLastResponseMs: settledAtMs === null ? null : settledAtMs - lastResponseMs,
    settledAtLastResponse: atLastResponse === undefined ? 0 : atLastResponse.settled - (baseline.consumed - baseline[PENDING]),
    milestonesMs: {
      lastResponse: lastResponseMs,
      gatewayBufferEmpty: samples.find((sample) => sample.atMs >= lastResponseMs && sample.gatewayBuffer === 0)?.atMs ?? null,
      allConsumed: input.consumedAtMs,
      allSettled: settledAtMs,
    },
    peaks: {
      pending: Math.max(0, ...samples.map((sample) => sample.pending)),
      gatewayBuffer: Math.max(0, ...samples.map((sample) => sample.gatewayBuffer)),
      evalWaiting: Math.max(0, ...samples.map((sample) => sample.evalWaiting)),
    },
    outcomes,
    gatewayPublish: input.published,
    candidateSim: { requests: input.candidateSim.requestsTotal, byStatus: { ...input.candidateSim.byStatus } },
    tailProcess: input.tailProcess,
    pollIntervalMs: POLL_INTERVAL_MS,
    series,
  };
}

/** Events the gateway handed to Kafka and dropped, from its Prometheus endpoint (whole run, warm-up included). */
async function scrapeGatewayPublish(gatewayUrl: string): Promise<{ sent: number | null; dropped: number | null }> {
  try {
    const response = await request(`${gatewayUrl}/metrics`, { reset: true });
    const text = await response.body.text();
    return { sent: sumMetric(text, 'shadow_gateway_publish_sent_total'), dropped: sumMetric(text, 'shadow_gateway_publish_dropped_total') };
  } catch {
    return { sent: null, dropped: null };
  }
}

function sumMetric(text: string, name: string): number | null {
  let sum: number | null = null;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || (line[name.length] !== ' ' && line[name.length] !== '{')) continue;
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(value)) sum = (sum ?? 0) + value;
  }
  return sum;
}

const METRICS = [
  'directRps',
  'directP50',
  'directP99',
  'aloneRps',
  'aloneP50',
  'aloneP99',
  'pipelineRps',
  'pipelineP50',
  'pipelineP99',
  'failed',
  'aloneRpsRatio',
  'aloneP50Ratio',
  'aloneP99Ratio',
  'pipelineRpsRatio',
  'pipelineP50Ratio',
  'pipelineP99Ratio',
  'loopBusyDirect',
  'loopBusyAlone',
  'loopBusyPipeline',
  'lastResponseS',
  'bufferEmptyS',
  'consumedS',
  'settledS',
  'e2eRps',
  'lagS',
  'settledAtLastResponse',
  'peakPending',
  'peakEvalWaiting',
  'loopBusyTail',
] as const;
type Metric = (typeof METRICS)[number];

/** One table row: a run, or the median over runs (medians of the per-run ratios, not ratios of medians). */
interface Row {
  label: string;
  values: Record<Metric, number | null>;
}

function rowOf(run: RunFigures): Row {
  const seconds = (ms: number | null | undefined) => (typeof ms === 'number' ? ms / 1000 : null);
  const { direct, gatewayAlone: alone, gatewayPipeline: piped, drain } = run;
  const paths = [direct, alone, piped];
  return {
    label: `${run.run}${run.error === null && drain?.drained === true ? '' : ' (!)'}`,
    values: {
      directRps: direct?.throughputRps ?? null,
      directP50: direct?.latencyMs.p50 ?? null,
      directP99: direct?.latencyMs.p99 ?? null,
      aloneRps: alone?.throughputRps ?? null,
      aloneP50: alone?.latencyMs.p50 ?? null,
      aloneP99: alone?.latencyMs.p99 ?? null,
      pipelineRps: piped?.throughputRps ?? null,
      pipelineP50: piped?.latencyMs.p50 ?? null,
      pipelineP99: piped?.latencyMs.p99 ?? null,
      failed: paths.every((path) => path === null) ? null : paths.reduce((sum, path) => sum + (path?.failed ?? 0), 0),
      aloneRpsRatio: run.overhead.gatewayAlone.throughput,
      aloneP50Ratio: run.overhead.gatewayAlone.p50,
      aloneP99Ratio: run.overhead.gatewayAlone.p99,
      pipelineRpsRatio: run.overhead.gatewayPipeline.throughput,
      pipelineP50Ratio: run.overhead.gatewayPipeline.p50,
      pipelineP99Ratio: run.overhead.gatewayPipeline.p99,
      loopBusyDirect: direct?.process.eventLoopUtilization ?? null,
      loopBusyAlone: alone?.process.eventLoopUtilization ?? null,
      loopBusyPipeline: piped?.process.eventLoopUtilization ?? null,
      lastResponseS: seconds(drain?.milestonesMs.lastResponse),
      bufferEmptyS: seconds(drain?.milestonesMs.gatewayBufferEmpty),
      consumedS: seconds(drain?.milestonesMs.allConsumed),
      settledS: seconds(drain?.milestonesMs.allSettled),
      e2eRps: drain?.endToEndRps ?? null,
      lagS: seconds(drain?.lagAfterLastResponseMs),
      settledAtLastResponse: drain === null ? null : drain.settledAtLastResponse / drain.requests,
      peakPending: drain?.peaks.pending ?? null,
      peakEvalWaiting: drain?.peaks.evalWaiting ?? null,
      loopBusyTail: drain?.tailProcess?.eventLoopUtilization ?? null,
    },
  };
}

function medianRow(runs: RunFigures[]): Row {
  const rows = runs.map(rowOf);
  const values = {} as Record<Metric, number | null>;
  for (const metric of METRICS) values[metric] = median(rows.map((row) => row.values[metric]));
  return { label: 'median', values };
}

function renderTables(runs: RunFigures[], summary: Row): string {
  const rows = runs.map(rowOf);
  const num = (header: string, metric: Metric, digits: number): Column<Row> => ({ header, value: (row) => fmt(row.values[metric], digits) });
  const percent = (header: string, metric: Metric): Column<Row> => ({ header, value: (row) => fmt(percentOf(row.values[metric]), 0) + (row.values[metric] === null ? '' : '%') });
  const run: Column<Row> = { header: 'run', value: (row) => row.label, align: 'left' };
  const live = renderTable<Row>(
    [
      run,
      num('direct req/s', 'directRps', 0),
      num('p50 ms', 'directP50', 2),
      num('p99 ms', 'directP99', 2),
      num('gw alone req/s', 'aloneRps', 0),
      num('p50 ms', 'aloneP50', 2),
      num('p99 ms', 'aloneP99', 2),
      num('gw+pipeline req/s', 'pipelineRps', 0),
      num('p50 ms', 'pipelineP50', 2),
      num('p99 ms', 'pipelineP99', 2),
      num('failed', 'failed', 0),
    ],
    rows,
    [summary],
  );
  const overhead = renderTable<Row>(
    [
      run,
      num('gw alone req/s ×', 'aloneRpsRatio', 2),
      num('p50 ×', 'aloneP50Ratio', 2),
      num('p99 ×', 'aloneP99Ratio', 2),
      num('gw+pipeline req/s ×', 'pipelineRpsRatio', 2),
      num('p50 ×', 'pipelineP50Ratio', 2),
      num('p99 ×', 'pipelineP99Ratio', 2),
      percent('loop busy direct', 'loopBusyDirect'),
      percent('gw alone', 'loopBusyAlone'),
      percent('gw+pipeline', 'loopBusyPipeline'),
    ],
    rows,
    [summary],
  );
  const drain = renderTable<Row>(
    [
      run,
      num('last response s', 'lastResponseS', 2),
      num('buffer empty s', 'bufferEmptyS', 2),
      num('all consumed s', 'consumedS', 2),
      num('all settled s', 'settledS', 2),
      num('e2e req/s', 'e2eRps', 0),
      num('lag s', 'lagS', 2),
      percent('settled at last resp.', 'settledAtLastResponse'),
      num('peak pending', 'peakPending', 0),
      num('peak eval queue', 'peakEvalWaiting', 0),
      percent('loop busy tail', 'loopBusyTail'),
    ],
    rows,
    [summary],
  );
  return [
    'Simulated models (sim profile "fast", instant answers) stand in for GPUs; load generator, sims and services share one Node.js process.',
    '',
    'Live path, client-side (per request, issue → last body byte): direct to the stable sim; through a gateway alone (nothing consumes its',
    'events); through the pipeline\'s gateway while replay, join and evaluator work in the same process:',
    '',
    live,
    '',
    'Gateway overhead, same run (× = gateway ÷ direct; req/s below 1 and latency above 1 cost), and how busy the event loop was per phase:',
    '',
    overhead,
    '',
    'Drain, seconds from the first gateway request until: the last user response, the gateway buffer is empty, replay consumed every',
    'request, every request is settled; e2e req/s = requests ÷ all settled; lag = all settled − last response:',
    '',
    drain,
    '',
    '"(!)" marks a run with an error, a drain timeout or an interruption. The median row is the median of each column (per-run ratios, not ratios of medians).',
  ].join('\n');
}

function percentOf(fraction: number | null): number | null {
  return fraction === null ? null : fraction * 100;
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  process.stderr.write(`bench:pipeline failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
}
