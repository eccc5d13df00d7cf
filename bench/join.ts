/**
 * `npm run bench:join`: how fast one join instance turns pre-filled response topics into BullMQ
 * jobs, what it costs, and what a pair waiting for its other side holds in Redis (issue 5):
 *  1. throughput: `--pairs` stable and candidate answers (~`--answer-tokens` tokens each) are
 *     written to the two topics first; then ONE join runs as its own process, the way users run
 *     it (`shadow-replay join --config …`), and the evaluation queue is counted until it holds a
 *     job per pair. Pairs/s from the moment the join is ready (in its consumer group) to the
 *     last job; its CPU time from `/proc/<pid>/stat`, per 1,000 pairs; Redis's own CPU over the
 *     same span from `INFO cpu` (a shared Redis: other users count too).
 *  2. profile: the same on `--profile-pairs` pairs with the join in THIS process, to count the
 *     Redis commands it sends per pair and take a CPU profile of where its time goes.
 *  3. memory: `--pending` stable answers whose candidates have not come (and as many candidate
 *     answers waiting for a stable one): Redis bytes per pending pair, from `MEMORY USAGE` of
 *     every key the join wrote (exact, and blind to other users of the Redis), and the change of
 *     `used_memory` (the whole server).
 * Each part has its own topics, consumer group, Redis prefix and queue, removed afterwards.
 * Nothing is asserted: the goal (≥ 5,000 pairs/s) is printed next to the measurement.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join as joinPath } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { ShadowConfigSchema, evalQueuePrefix, type Addresses } from '@shadow-replay/contracts';
import { JoinService, joinSettings } from '@shadow-replay/join';
import { createKafka, createRedis, ensureTopics, silentLogger } from '@shadow-replay/platform';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Kafka } from 'kafkajs';
import { integerFlag, partsFlag, log, startBench } from './lib/cli.js';
import { CliService, freePort, metricSum } from './lib/cli-service.js';
import { startCpuProfile, summarizeCpuProfile, writeCpuProfile, type CpuProfileSummary } from './lib/cpu-profile.js';
import { cpuBetween, cpuSnapshot, type CpuUse } from './lib/process-cpu.js';
import { countRedisCommands } from './lib/redis-command-count.js';
import { RESULTS_DIR, fmt, machineInfo, ratio, renderTable, writeResults, type Column } from './lib/report.js';
import { prefillResponses, type ResponseFill } from './lib/response-topics.js';
import { benchScope, cleanupScope, type BenchScope, type CleanupReport } from './lib/scope.js';

const USAGE = `Usage: npm run bench:join [-- --pairs N] [--partitions P] [--answer-tokens T] [--pending N] [--profile-pairs N] [--parts LIST]

Pairs per second through ONE join instance, from pre-filled stable and candidate response topics
to BullMQ jobs; its CPU time per 1,000 pairs; Redis bytes per pending pair. Needs Kafka and Redis
(KAFKA_BROKERS, default 127.0.0.1:9092; REDIS_URL, default redis://127.0.0.1:6379). Prints tables
and writes bench/results/join-<timestamp>.json.

  --pairs N           pairs in the throughput run (default 20000)
  --partitions P      partitions of each response topic (default 6)
  --answer-tokens T   tokens of each answer (default 200)
  --pending N         pairs waiting for their other side in the memory run (default 20000)
  --profile-pairs N   pairs in the in-process run that counts Redis commands and profiles
                      the join (default 5000); writes bench/results/join-<timestamp>.cpuprofile
  --parts LIST        comma-separated, from throughput,profile,memory (default all)
  --help              this text
`;

const Part = { throughput: 'throughput', profile: 'profile', memory: 'memory' } as const;
type Part = (typeof Part)[keyof typeof Part];
const PARTS: readonly Part[] = [Part.throughput, Part.profile, Part.memory];
const ARM = 'candidate';
const GOAL_PAIRS_PER_SECOND = 5_000;
const POLL_MS = 50;
const METRICS_POLL_MS = 250;
const PROGRESS_EVERY_MS = 2_000;

interface Options {
  pairs: number;
  partitions: number;
  answerTokens: number;
  pending: number;
  profilePairs: number;
  parts: Set<Part>;
}

function parseOptions(argv: string[]): Options | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      pairs: { type: 'string', default: '20000' },
      partitions: { type: 'string', default: '6' },
      'answer-tokens': { type: 'string', default: '200' },
      pending: { type: 'string', default: '20000' },
      'profile-pairs': { type: 'string', default: '5000' },
      parts: { type: 'string', default: PARTS.join(',') },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return 'help';
  const parts = partsFlag(values.parts, PARTS);
  return {
    pairs: integerFlag('--pairs', values.pairs, 100),
    partitions: integerFlag('--partitions', values.partitions),
    answerTokens: integerFlag('--answer-tokens', values['answer-tokens'], 2),
    pending: integerFlag('--pending', values.pending, 100),
    profilePairs: integerFlag('--profile-pairs', values['profile-pairs'], 100),
    parts,
  };
}


interface Context {
  addresses: Addresses;
  signal: AbortSignal;
  options: Options;
}

/** One part's topics, prefix and queue, with clients; `close` removes everything. */
interface Stage {
  scope: BenchScope;
  kafka: Kafka;
  redis: Redis;
  queue: Queue;
  fill: ResponseFill;
  /** The configuration a join of this stage runs with. */
  config: (port: number) => Record<string, unknown>;
  close: () => Promise<CleanupReport>;
}

async function openStage(kind: string, context: Context): Promise<Stage> {
  const scope = benchScope(kind);
  const kafka = createKafka({ brokers: context.addresses.kafkaBrokers, clientId: `${scope.id}-bench`, log: silentLogger() });
  const redis = createRedis(context.addresses.redisUrl, `${scope.id}-bench`);
  const queueRedis = createRedis(context.addresses.redisUrl, `${scope.id}-queue`);
  const queue = new Queue(scope.evalQueue, { connection: queueRedis, prefix: evalQueuePrefix(scope.keyPrefix) });
  const close = async () => {
    // A Queue leaves the connection it was given open.
    await queue.close().catch(() => undefined);
    await queueRedis.quit().catch(() => undefined);
    const report = await cleanupScope(scope, { kafkaBrokers: context.addresses.kafkaBrokers, redis });
    await redis.quit().catch(() => undefined);
    log(`${kind}: cleaned up ${report.topicsDeleted} topics, ${report.groupsDeleted} consumer groups, ${report.redisKeysDeleted} Redis keys${report.problems.length > 0 ? ` (problems: ${report.problems.join('; ')})` : ''}`);
    return report;
  };
  try {
    await ensureTopics(kafka, [scope.topics.stableResponses, scope.topics.candidateResponses, scope.topics.deadLetter], context.options.partitions);
  } catch (error) {
    await close();
    throw error;
  }
  return {
    scope,
    kafka,
    redis,
    queue,
    fill: { idPrefix: 'r', experimentId: scope.id, arm: ARM, answerTokens: context.options.answerTokens },
    config: (port) => ({
      // The benchmark created the topics, with its own partition count.
      kafka: { clientId: scope.id, topics: scope.topics, partitions: context.options.partitions, createTopics: false },
      redis: { keyPrefix: scope.keyPrefix, evalQueue: scope.evalQueue },
      join: { listen: { host: '127.0.0.1', port } },
    }),
    close,
  };
}

/** Fills both response topics with answers [from, to), both sides at once. Returns mean value bytes per side. */
async function fillPairs(stage: Stage, sides: ReadonlyArray<'stable' | 'candidate'>, range: { from: number; to: number }, tag: string): Promise<Record<string, number>> {
  const began = performance.now();
  const count = range.to - range.from;
  let nextLog = performance.now() + PROGRESS_EVERY_MS;
  const sent: Record<string, number> = {};
  const bytes = await Promise.all(
    sides.map((side) =>
      prefillResponses(stage.kafka, side === 'stable' ? stage.scope.topics.stableResponses : stage.scope.topics.candidateResponses, side, stage.fill, range, (done) => {
        sent[side] = done;
        if (performance.now() >= nextLog) {
          nextLog += PROGRESS_EVERY_MS;
          log(`  ${tag}: filled ${Object.entries(sent).map(([name, value]) => `${value} ${name}`).join(', ')} of ${count}`);
        }
      }),
    ),
  );
  log(`${tag}: filled ${sides.join(' and ')} topics with ${count} answers each in ${fmt((performance.now() - began) / 1000, 1)} s`);
  return Object.fromEntries(sides.map((side, index) => [side, (bytes[index] ?? 0) / count]));
}

async function jobCount(queue: Queue): Promise<number> {
  const counts = await queue.getJobCounts('waiting', 'active', 'completed', 'failed', 'delayed', 'prioritized', 'waiting-children');
  return Object.values(counts).reduce((sum, count) => sum + count, 0);
}

/** Polls every `intervalMs` (default `POLL_MS`) until `read` reaches `target`; returns when it did (performance.now()). */
async function until(read: () => Promise<number>, target: number, options: { timeoutMs: number; what: string; signal: AbortSignal; intervalMs?: number; onPoll?: (value: number, at: number) => void }): Promise<number> {
  const deadline = performance.now() + options.timeoutMs;
  let nextLog = performance.now() + PROGRESS_EVERY_MS;
  for (;;) {
    if (options.signal.aborted) throw new Error(`interrupted while waiting for ${options.what}`);
    const value = await read();
    const at = performance.now();
    options.onPoll?.(value, at);
    if (value >= target) return at;
    if (at > deadline) throw new Error(`timed out after ${options.timeoutMs} ms waiting for ${options.what} (${value} of ${target})`);
    if (at >= nextLog) {
      nextLog += PROGRESS_EVERY_MS;
      log(`  ${value} of ${target} ${options.what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? POLL_MS));
  }
}

/** Seconds Redis has spent on the CPU (user + system), from `INFO cpu`. */
async function redisCpuMs(redis: Redis): Promise<number | null> {
  const info = await redis.info('cpu');
  const user = Number(/used_cpu_user:([\d.]+)/.exec(info)?.[1]);
  const system = Number(/used_cpu_sys:([\d.]+)/.exec(info)?.[1]);
  return Number.isFinite(user) && Number.isFinite(system) ? (user + system) * 1000 : null;
}

async function usedMemory(redis: Redis): Promise<number | null> {
  const value = Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1]);
  return Number.isFinite(value) ? value : null;
}

// ---------------------------------------------------------------------------------------------
// Part 1: throughput of one join process.

interface ThroughputFigures {
  id: string;
  pairs: number;
  /** Mean value bytes of a stable and of a candidate answer. */
  eventBytes: Record<string, number>;
  /** Spawn → /readyz 200 (consumer in its group). */
  startMs: number | null;
  /** Jobs already in the queue when the join was seen ready (it starts working as soon as it joins). */
  jobsAtReady: number | null;
  /** Ready → the queue holds a job per pair. */
  readyToAllMs: number | null;
  firstJobToAllMs: number | null;
  pairsPerSecond: number | null;
  pairsPerSecondFromFirstJob: number | null;
  /** CPU of the join process from ready to the last job. */
  cpu: CpuUse | null;
  /** CPU ms of the join per 1,000 pairs handed off between ready and the last job. */
  cpuMsPer1000: number | null;
  /** CPU of the join process from spawn to the last job (Node and tsx start-up included). */
  cpuMsTotal: number | null;
  /** Redis's own CPU over ready → last job, per 1,000 pairs (the server is shared: other users count too). */
  redisCpuMsPer1000: number | null;
  /** From the join's /metrics at the end. */
  joinMetrics: { pairs: number | null; stableEvents: number | null; candidateEvents: number | null; deadLetters: number | null } | null;
  /** Jobs in the queue every poll, ms after ready (for plotting). */
  series: Array<{ atMs: number; jobs: number }>;
  cleanup: CleanupReport | null;
  error: string | null;
}

async function runThroughput(context: Context): Promise<ThroughputFigures> {
  const { options } = context;
  const tag = 'throughput';
  const figures: ThroughputFigures = {
    id: '',
    pairs: options.pairs,
    eventBytes: {},
    startMs: null,
    jobsAtReady: null,
    readyToAllMs: null,
    firstJobToAllMs: null,
    pairsPerSecond: null,
    pairsPerSecondFromFirstJob: null,
    cpu: null,
    cpuMsPer1000: null,
    cpuMsTotal: null,
    redisCpuMsPer1000: null,
    joinMetrics: null,
    series: [],
    cleanup: null,
    error: null,
  };
  let stage: Stage | undefined;
  let service: CliService | undefined;
  const dir = await mkdtemp(joinPath(tmpdir(), 'bench-join-'));
  try {
    stage = await openStage('join-throughput', context);
    figures.id = stage.scope.id;
    log(`\n${tag}: ${stage.scope.id}; ${options.pairs} pairs, ${options.partitions} partitions, ${options.answerTokens}-token answers`);
    figures.eventBytes = await fillPairs(stage, ['stable', 'candidate'], { from: 0, to: options.pairs }, tag);
    const port = await freePort();
    const spawnedAt = performance.now();
    const queue = stage.queue;
    service = await CliService.start({
      service: 'join',
      config: stage.config(port),
      port,
      env: { KAFKA_BROKERS: context.addresses.kafkaBrokers.join(','), REDIS_URL: context.addresses.redisUrl, LOG_LEVEL: 'warn' },
      dir,
    });
    const readyAt = performance.now();
    const processes = new Map([['join', { pid: service.pid, tree: false }]]);
    const cpuAtReady = cpuSnapshot(processes);
    const redisAtReady = await redisCpuMs(stage.redis);
    figures.startMs = readyAt - spawnedAt;
    figures.jobsAtReady = await jobCount(queue);
    log(`${tag}: join (pid ${service.pid ?? '?'}) ready ${fmt(figures.startMs / 1000, 2)} s after spawn with ${figures.jobsAtReady} jobs already queued; log ${service.logFile}`);
    let firstJobAt: number | null = figures.jobsAtReady > 0 ? readyAt : null;
    const allAt = await until(() => jobCount(queue), options.pairs, {
      timeoutMs: Math.max(120_000, options.pairs * 5),
      what: 'jobs in the queue',
      signal: context.signal,
      onPoll: (jobs, at) => {
        if (jobs > 0) firstJobAt ??= at;
        figures.series.push({ atMs: Math.round(at - readyAt), jobs });
      },
    });
    const cpuAtAll = cpuSnapshot(processes);
    const redisAtAll = await redisCpuMs(stage.redis);
    const handed = options.pairs - figures.jobsAtReady;
    figures.readyToAllMs = allAt - readyAt;
    figures.firstJobToAllMs = firstJobAt === null ? null : allAt - firstJobAt;
    figures.pairsPerSecond = handed > 0 ? handed / (figures.readyToAllMs / 1000) : null;
    figures.pairsPerSecondFromFirstJob = figures.firstJobToAllMs === null || figures.firstJobToAllMs <= 0 ? null : options.pairs / (figures.firstJobToAllMs / 1000);
    figures.cpu = cpuBetween(cpuAtReady, cpuAtAll);
    const joinCpu = figures.cpu.cpuMs.join;
    figures.cpuMsPer1000 = joinCpu === undefined || handed <= 0 ? null : (joinCpu / handed) * 1000;
    figures.cpuMsTotal = cpuAtAll.cpuMs.join ?? null;
    figures.redisCpuMsPer1000 = redisAtReady === null || redisAtAll === null || handed <= 0 ? null : ((redisAtAll - redisAtReady) / handed) * 1000;
    const metrics = await service.metrics();
    figures.joinMetrics = {
      pairs: metricSum(metrics, 'shadow_join_pairs_total'),
      stableEvents: metricSum(metrics, 'shadow_join_events_total', 'side="stable"'),
      candidateEvents: metricSum(metrics, 'shadow_join_events_total', 'side="candidate"'),
      deadLetters: metricSum(metrics, 'shadow_join_dead_letters_total'),
    };
    log(`${tag}: ${options.pairs} jobs ${fmt(figures.readyToAllMs / 1000, 2)} s after ready: ${fmt(figures.pairsPerSecond, 0)} pairs/s; join CPU ${fmt(figures.cpuMsPer1000, 0)} ms per 1,000 pairs`);
  } catch (error) {
    partFailed(tag, figures, error);
  } finally {
    const code = await service?.stop();
    if (service !== undefined && code !== 0) log(`${tag}: join exited with ${code ?? 'a kill'}; log ${service.logFile}`);
    if (stage !== undefined) figures.cleanup = await stage.close();
    await rm(dir, { recursive: true, force: true });
  }
  return figures;
}

// ---------------------------------------------------------------------------------------------
// Part 2: the join in this process, for Redis commands per pair and a CPU profile.

interface ProfileFigures {
  id: string;
  pairs: number;
  readyToAllMs: number | null;
  pairsPerSecond: number | null;
  /** This process's CPU (the join, and this harness polling /metrics) per 1,000 pairs. */
  cpuMsPer1000: number | null;
  /** Redis commands per pair sent by this process from start() to the last pair (a Lua script is named after its first command). */
  redisCommandsPerPair: Record<string, number> | null;
  redisCommandsPerPairTotal: number | null;
  profile: { path: string; summary: CpuProfileSummary } | null;
  cleanup: CleanupReport | null;
  error: string | null;
}

async function runProfile(context: Context, startedAt: Date): Promise<ProfileFigures> {
  const { options } = context;
  const tag = 'profile';
  const figures: ProfileFigures = { id: '', pairs: options.profilePairs, readyToAllMs: null, pairsPerSecond: null, cpuMsPer1000: null, redisCommandsPerPair: null, redisCommandsPerPairTotal: null, profile: null, cleanup: null, error: null };
  let stage: Stage | undefined;
  let service: JoinService | undefined;
  try {
    stage = await openStage('join-profile', context);
    figures.id = stage.scope.id;
    log(`\n${tag}: ${stage.scope.id}; ${options.profilePairs} pairs, the join in this process`);
    await fillPairs(stage, ['stable', 'candidate'], { from: 0, to: options.profilePairs }, tag);
    const port = await freePort();
    const config = ShadowConfigSchema.parse(stage.config(port));
    service = new JoinService({ settings: joinSettings(config, { KAFKA_BROKERS: context.addresses.kafkaBrokers.join(','), REDIS_URL: context.addresses.redisUrl }), log: silentLogger() });
    const joinService = service;
    // Counted over the join's /metrics, not the queue, so that this harness sends no Redis command.
    const pairs = async () => metricSum(await fetch(`http://127.0.0.1:${port}/metrics`).then((response) => response.text()), 'shadow_join_pairs_total') ?? 0;
    const counter = countRedisCommands();
    const profiler = await startCpuProfile();
    let commands: Record<string, number> = {};
    try {
      await service.start();
      await until(() => Promise.resolve(joinService.ready ? 1 : 0), 1, { timeoutMs: 60_000, what: 'join in its group', signal: context.signal });
      const readyAt = performance.now();
      const cpu = process.cpuUsage();
      // Polled less often than the queue in the throughput run: the /metrics text is parsed in this process, which is profiled.
      const allAt = await until(pairs, options.profilePairs, { timeoutMs: Math.max(120_000, options.profilePairs * 5), what: 'pairs handed off', signal: context.signal, intervalMs: METRICS_POLL_MS });
      const used = process.cpuUsage(cpu);
      figures.readyToAllMs = allAt - readyAt;
      figures.pairsPerSecond = options.profilePairs / (figures.readyToAllMs / 1000);
      figures.cpuMsPer1000 = ((used.user + used.system) / 1000 / options.profilePairs) * 1000;
    } finally {
      commands = counter.stop();
      const profile = await profiler.stop();
      const path = joinPath(RESULTS_DIR, `join-${startedAt.toISOString().replace(/[:.]/g, '-')}.cpuprofile`);
      await writeCpuProfile(path, profile);
      figures.profile = { path, summary: summarizeCpuProfile(profile) };
    }
    figures.redisCommandsPerPair = Object.fromEntries(Object.entries(commands).map(([name, count]) => [name, count / options.profilePairs]));
    figures.redisCommandsPerPairTotal = Object.values(commands).reduce((sum, count) => sum + count, 0) / options.profilePairs;
    const queued = await jobCount(stage.queue);
    if (queued !== options.profilePairs) throw new Error(`the queue holds ${queued} jobs for ${options.profilePairs} pairs`);
    log(`${tag}: ${fmt(figures.pairsPerSecond, 0)} pairs/s in process, ${fmt(figures.redisCommandsPerPairTotal, 1)} Redis commands per pair; profile ${figures.profile.path}`);
  } catch (error) {
    partFailed(tag, figures, error);
  } finally {
    await closeInProcess(tag, figures, service, stage);
  }
  return figures;
}

// ---------------------------------------------------------------------------------------------
// Part 3: Redis memory of pairs waiting for their other side.

interface PendingFigures {
  /** Which side came; the other is awaited. */
  side: 'stable' | 'candidate';
  pairs: number;
  eventBytes: number;
  /** Keys the join wrote, per pending pair. */
  keysPerPair: number;
  /** `MEMORY USAGE` of those keys, per pending pair. */
  bytesPerPair: number;
  /** Change of the server's `used_memory`, per pending pair (every user of the Redis counts). */
  usedMemoryPerPair: number | null;
}

interface MemoryFigures {
  id: string;
  pending: PendingFigures[];
  cleanup: CleanupReport | null;
  error: string | null;
}

/** Keys under the join's prefix and the sum of their `MEMORY USAGE` (SAMPLES 0: every element counted). */
async function joinKeyMemory(redis: Redis, keyPrefix: string): Promise<{ keys: number; bytes: number }> {
  let cursor = '0';
  let keys = 0;
  let bytes = 0;
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', `${keyPrefix}:join:*`, 'COUNT', 1000);
    cursor = next;
    if (found.length === 0) continue;
    const pipeline = redis.pipeline();
    for (const key of found) pipeline.call('MEMORY', 'USAGE', key, 'SAMPLES', '0');
    for (const [error, value] of (await pipeline.exec()) ?? []) {
      if (error === null && typeof value === 'number') {
        keys++;
        bytes += value;
      }
    }
  } while (cursor !== '0');
  return { keys, bytes };
}

async function runMemory(context: Context): Promise<MemoryFigures> {
  const { options } = context;
  const tag = 'memory';
  const figures: MemoryFigures = { id: '', pending: [], cleanup: null, error: null };
  let stage: Stage | undefined;
  let service: JoinService | undefined;
  try {
    stage = await openStage('join-memory', context);
    figures.id = stage.scope.id;
    const port = await freePort();
    const config = ShadowConfigSchema.parse(stage.config(port));
    const metrics = () => fetch(`http://127.0.0.1:${port}/metrics`).then((response) => response.text());
    service = new JoinService({ settings: joinSettings(config, { KAFKA_BROKERS: context.addresses.kafkaBrokers.join(','), REDIS_URL: context.addresses.redisUrl }), log: silentLogger() });
    await service.start();
    // Stable answers for requests [0, N) and candidate answers for [N, 2N): no pair ever completes.
    const sides: Array<{ side: 'stable' | 'candidate'; range: { from: number; to: number } }> = [
      { side: 'stable', range: { from: 0, to: options.pending } },
      { side: 'candidate', range: { from: options.pending, to: 2 * options.pending } },
    ];
    let before = await joinKeyMemory(stage.redis, stage.scope.keyPrefix);
    for (const { side, range } of sides) {
      log(`\n${tag}: ${stage.scope.id}; ${options.pending} ${side} answers whose other side never comes`);
      const usedBefore = await usedMemory(stage.redis);
      const bytes = await fillPairs(stage, [side], range, tag);
      await until(async () => metricSum(await metrics(), 'shadow_join_events_total', `side="${side}"`) ?? 0, options.pending, { timeoutMs: Math.max(120_000, options.pending * 5), what: `${side} answers read`, signal: context.signal, intervalMs: METRICS_POLL_MS });
      const usedAfter = await usedMemory(stage.redis);
      const after = await joinKeyMemory(stage.redis, stage.scope.keyPrefix);
      const pending: PendingFigures = {
        side,
        pairs: options.pending,
        eventBytes: bytes[side] ?? 0,
        keysPerPair: (after.keys - before.keys) / options.pending,
        bytesPerPair: (after.bytes - before.bytes) / options.pending,
        usedMemoryPerPair: usedBefore === null || usedAfter === null ? null : (usedAfter - usedBefore) / options.pending,
      };
      figures.pending.push(pending);
      before = after;
      log(`${tag}: ${fmt(pending.bytesPerPair, 0)} bytes in ${fmt(pending.keysPerPair, 2)} keys per pending pair (${side} side waiting; its event is ${fmt(pending.eventBytes, 0)} bytes)`);
    }
  } catch (error) {
    partFailed(tag, figures, error);
  } finally {
    await closeInProcess(tag, figures, service, stage);
  }
  return figures;
}

/** Records why a part failed; the other parts still run and the JSON says what happened. */
function partFailed(tag: string, figures: { error: string | null }, error: unknown): void {
  figures.error = error instanceof Error ? error.message : String(error);
  log(`${tag}: failed: ${figures.error}`);
}

/** Stops the join of an in-process part and removes what its stage created. */
async function closeInProcess(tag: string, figures: { cleanup: CleanupReport | null }, service: JoinService | undefined, stage: Stage | undefined): Promise<void> {
  await service?.close().catch((error: unknown) => log(`${tag}: join close failed: ${String(error)}`));
  if (stage !== undefined) figures.cleanup = await stage.close();
}

// ---------------------------------------------------------------------------------------------
// Report.

function renderThroughput(figures: ThroughputFigures, options: Options): string {
  const row = figures;
  const columns: Array<Column<ThroughputFigures>> = [
    { header: 'pairs', value: (entry) => String(entry.pairs) },
    { header: 'partitions', value: () => String(options.partitions) },
    { header: 'answer bytes (stable / cand.)', value: (entry) => `${fmt(entry.eventBytes.stable, 0)} / ${fmt(entry.eventBytes.candidate, 0)}` },
    { header: 'spawn → ready s', value: (entry) => fmt((entry.startMs ?? NaN) / 1000, 2) },
    { header: 'ready → all jobs s', value: (entry) => fmt((entry.readyToAllMs ?? NaN) / 1000, 2) },
    { header: 'pairs/s', value: (entry) => fmt(entry.pairsPerSecond, 0) },
    { header: 'pairs/s from 1st job', value: (entry) => fmt(entry.pairsPerSecondFromFirstJob, 0) },
    { header: 'join CPU ms / 1,000 pairs', value: (entry) => fmt(entry.cpuMsPer1000, 0) },
    { header: 'join CPU % of a core', value: (entry) => fmt(ratio(entry.cpu?.cpuMs.join, entry.cpu?.wallMs) === null ? null : (ratio(entry.cpu?.cpuMs.join, entry.cpu?.wallMs) ?? 0) * 100, 0) },
    { header: 'join waited for a CPU %', value: (entry) => fmt(ratio(entry.cpu?.waitMs.join, entry.cpu?.wallMs) === null ? null : (ratio(entry.cpu?.waitMs.join, entry.cpu?.wallMs) ?? 0) * 100, 0) },
    { header: 'Redis CPU ms / 1,000 pairs', value: (entry) => fmt(entry.redisCpuMsPer1000, 0) },
    { header: 'machine busy %', value: (entry) => fmt(entry.cpu?.machineBusy === null || entry.cpu?.machineBusy === undefined ? null : entry.cpu.machineBusy * 100, 0) },
  ];
  const lines = [renderTable(columns, [row])];
  if (figures.error !== null) lines.push('', `The throughput run failed: ${figures.error}`);
  const metrics = figures.joinMetrics;
  if (metrics !== null) lines.push('', `The join's own counters: ${metrics.pairs ?? '–'} pairs, ${metrics.stableEvents ?? '–'} stable and ${metrics.candidateEvents ?? '–'} candidate answers read, ${metrics.deadLetters ?? 0} dead letters; ${figures.jobsAtReady ?? '–'} jobs were queued before /readyz was seen (left out of pairs/s and CPU).`);
  return lines.join('\n');
}

function renderProfile(figures: ProfileFigures): string {
  const lines = [
    `In this process (the join and this harness's /metrics polls): ${fmt(figures.pairsPerSecond, 0)} pairs/s, ${fmt(figures.cpuMsPer1000, 0)} ms CPU per 1,000 pairs over ${figures.pairs} pairs, ${fmt(figures.redisCommandsPerPairTotal, 1)} Redis commands per pair:`,
    '',
    renderTable<[string, number]>(
      [
        { header: 'Redis command (Lua: its first call)', value: ([name]) => name, align: 'left' },
        { header: 'per pair', value: ([, perPair]) => fmt(perPair, 2) },
      ],
      Object.entries(figures.redisCommandsPerPair ?? {}).sort((a, b) => b[1] - a[1]),
    ),
  ];
  if (figures.error !== null) lines.push('', `The profile run failed: ${figures.error}`);
  const profile = figures.profile;
  if (profile !== null) {
    const busy = profile.summary.busyMs;
    const share = (ms: number) => (busy > 0 ? `${fmt((ms / busy) * 100, 1)}%` : '–');
    lines.push(
      '',
      `Where the join's CPU goes (${fmt(profile.summary.sampledMs / 1000, 2)} s sampled, ${fmt(busy / 1000, 2)} s busy; Node internals and native built-ins charged to their nearest caller). Profile: ${profile.path}`,
      '',
      renderTable<CpuProfileSummary['byCause'][number]>(
        [
          { header: 'component', value: (entry) => entry.name, align: 'left' },
          { header: 'ms', value: (entry) => fmt(entry.ms, 0) },
          { header: '% of busy', value: (entry) => share(entry.ms) },
        ],
        profile.summary.byCause.filter((entry) => entry.name !== 'idle' && entry.ms >= busy / 100),
      ),
      '',
      renderTable<CpuProfileSummary['topFunctions'][number]>(
        [
          { header: 'function (self time)', value: (entry) => entry.name, align: 'left' },
          { header: 'where', value: (entry) => entry.location, align: 'left' },
          { header: '% of busy', value: (entry) => share(entry.ms) },
        ],
        profile.summary.topFunctions.slice(0, 12),
      ),
    );
  }
  return lines.join('\n');
}

function renderMemory(figures: MemoryFigures): string {
  const lines = [
    renderTable<PendingFigures>(
      [
        { header: 'side that came (other awaited)', value: (entry) => entry.side, align: 'left' },
        { header: 'pending pairs', value: (entry) => String(entry.pairs) },
        { header: 'event bytes', value: (entry) => fmt(entry.eventBytes, 0) },
        { header: 'keys per pair', value: (entry) => fmt(entry.keysPerPair, 2) },
        { header: 'Redis bytes per pending pair (MEMORY USAGE)', value: (entry) => fmt(entry.bytesPerPair, 0) },
        { header: '÷ event bytes', value: (entry) => fmt(ratio(entry.bytesPerPair, entry.eventBytes), 2) },
        { header: 'used_memory Δ per pair (whole server)', value: (entry) => fmt(entry.usedMemoryPerPair, 0) },
      ],
      figures.pending,
    ),
  ];
  if (figures.error !== null) lines.push('', `The memory run failed: ${figures.error}`);
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------

async function main(argv: string[]): Promise<number> {
  const start = startBench(argv, { usage: USAGE, parse: parseOptions, finishes: 'the current part', log });
  if (typeof start === 'number') return start;
  const { options, addresses, signal } = start;
  const context: Context = { addresses, signal, options };
  const startedAt = new Date();
  const machine = machineInfo();
  log(`bench:join — ${machine.cpus} CPUs (${machine.cpuModel}), Node ${machine.node}, load average ${machine.loadAverage.join(' ')}; Kafka ${addresses.kafkaBrokers.join(',')}, Redis ${addresses.redisUrl}`);

  const throughput = options.parts.has(Part.throughput) && !signal.aborted ? await runThroughput(context) : null;
  const profile = options.parts.has(Part.profile) && !signal.aborted ? await runProfile(context, startedAt) : null;
  const memory = options.parts.has(Part.memory) && !signal.aborted ? await runMemory(context) : null;

  const sections: string[] = [];
  if (throughput !== null) {
    const goal = throughput.pairsPerSecond === null ? 'not measured' : `${fmt(throughput.pairsPerSecond, 0)} pairs/s: ${throughput.pairsPerSecond >= GOAL_PAIRS_PER_SECOND ? 'PASS' : 'MISS'}`;
    sections.push(
      `Throughput: one join process (\`shadow-replay join\`), pre-filled topics → a BullMQ job per pair; pairs/s and CPU from /readyz to the last job. Goal ≥ ${GOAL_PAIRS_PER_SECOND} pairs/s (printed, not asserted): ${goal}.`,
      '',
      renderThroughput(throughput, options),
    );
  }
  if (profile !== null) sections.push('', renderProfile(profile));
  if (memory !== null) sections.push('', 'Redis memory of pairs waiting for their other side (window 15 min; the stable side is kept as its raw event, a candidate side in a hash with a deadline):', '', renderMemory(memory));
  process.stdout.write(`\n${sections.join('\n')}\n`);

  const path = await writeResults('join', startedAt, {
    benchmark: 'join',
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    note: 'One join instance; Kafka, Redis and this harness on the same machine, which is shared. The throughput run measures the join as its own process; the profile run has it in this process.',
    machine,
    parameters: { ...options, parts: [...options.parts], goalPairsPerSecond: GOAL_PAIRS_PER_SECOND, pollMs: POLL_MS, kafkaBrokers: addresses.kafkaBrokers, redisUrl: addresses.redisUrl },
    interrupted: signal.aborted,
    throughput,
    profile,
    memory,
  });
  process.stdout.write(`\nresults: ${path}\n`);
  const failed = [throughput, profile, memory].some((part) => part !== null && part.error !== null);
  if (failed) log('some parts failed or were interrupted: see "error" in the JSON');
  return signal.aborted ? 130 : failed ? 1 : 0;
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  process.stderr.write(`bench:join failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
}
