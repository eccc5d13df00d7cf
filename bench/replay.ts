/**
 * `npm run bench:replay`: does replay put exactly the load asked for on a candidate, and how
 * fast can it go? The issue's performance goals (issue 4), measured AT a simulated candidate
 * (`@shadow-replay/sim`, standing in for a GPU server: its `stats()` counts arrivals per
 * wall-clock second and the most calls it had in flight):
 *  1. rate: one replay instance, one arm at `--rps` (50) with a concurrency cap of
 *     `--concurrency` (64), for `--seconds` (60) against a realistically slow candidate; then
 *     "cap": a cap of 4 against a candidate whose calls take ~100 ms, where the cap and not the
 *     rate is the bound, followed by a few seconds in which the candidate answers instantly
 *     ("recovery": does the pace hold when the cap stops binding?);
 *  2. shared: two replay instances in one consumer group sharing one arm at `--rps` together,
 *     the topic filled once their group is stable (`scale-out` starts
 *     the second instance while the first works through a full topic: how long until the group
 *     is stable again, and calls made twice);
 *  3. ceiling: an instantly answering candidate, no rate limit: events/s through one replay
 *     instance over `--events` pre-filled events, against `kcat -C` (and a bare kafkajs
 *     consumer) reading the same topic to its end in the same run.
 * Every part has its own topics, group and Redis keys, removed afterwards. Nothing is asserted:
 * the goals are printed next to the measurements.
 */
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { join } from 'node:path';
import { ResponseEventSchema, ShadowConfigSchema, decodeEvent, type ShadowConfig } from '@shadow-replay/contracts';
import { OutcomeStore, type addressesFromEnv, createKafka, createRedis, ensureTopics, silentLogger, type Logger, type OutcomeCounts } from '@shadow-replay/platform';
import { ReplayService, replaySettings } from '@shadow-replay/replay';
import { createSimServer, type SimProfilePatch, type SimServer } from '@shadow-replay/sim';
import type { Redis } from 'ioredis';
import type { Kafka } from 'kafkajs';
import { destination, pino } from 'pino';
import { request } from 'undici';
import { integerFlag, partsFlag, log, startBench, UsageError } from './lib/cli.js';
import { startCpuProfile, summarizeCpuProfile, writeCpuProfile, type CpuProfileSummary } from './lib/cpu-profile.js';
import { KCAT_INSTALL_HINT, kcatVersion, readTopicWithKcat, type KcatRun } from './lib/kcat.js';
import { arrivalSeries, rateWindow, type RateWindow } from './lib/rate-windows.js';
import { countRedisCommands } from './lib/redis-command-count.js';
import { RESULTS_DIR, fmt, machineInfo, median, ratio, renderTable, writeResults, type Column } from './lib/report.js';
import { prefillRequests, readTopicRecords, topicRecordCount } from './lib/request-topic.js';
import { benchScope, cleanupScope, type BenchScope, type CleanupReport } from './lib/scope.js';

const USAGE = `Usage: npm run bench:replay [-- --seconds S] [--rps R] [--concurrency C] [--events N] [--parts LIST] [--kcat PATH] [--cpu-prof]

Replay's pacing and ceiling, measured at a SIMULATED candidate (@shadow-replay/sim, a stand-in
for a GPU server). Needs Kafka and Redis (KAFKA_BROKERS, default 127.0.0.1:9092; REDIS_URL,
default redis://127.0.0.1:6379) and, for the ceiling's reference, kcat on the PATH. Prints
tables and writes bench/results/replay-<timestamp>.json.

  --seconds S        length of the rate and shared runs (default 60)
  --rps R            target requests/s of the arm (default 50)
  --concurrency C    concurrency cap of the arm in the rate and shared runs (default 64)
  --cap-seconds S    length of the run with a cap of 4 and ~100 ms calls (default 20)
  --events N         events through replay in the ceiling run (default 20000)
  --parts LIST       comma-separated, from rate,cap,shared,scale-out,ceiling
                     (default all of them); scale-out: a second instance
                     joins 5 s after the first began working through a full
                     topic (time to a stable group, calls made twice, the pace meanwhile)
  --kcat PATH        the kcat executable (default kcat)
  --kcat-runs K      kcat reads of the topic; the median counts (default 3)
  --retries N        run a failed part again up to N times, 10 s later (default 1)
  --cpu-prof         profile the ceiling's replay phase (in process, like node --cpu-prof),
                     write bench/results/replay-<timestamp>.cpuprofile and summarise it
  --help             this text
`;

const Part = { rate: 'rate', cap: 'cap', shared: 'shared', scaleOut: 'scale-out', ceiling: 'ceiling' } as const;
type Part = (typeof Part)[keyof typeof Part];
const PARTS: readonly Part[] = [Part.rate, Part.cap, Part.shared, Part.scaleOut, Part.ceiling];
/** Run without --parts. `scale-out`: a second instance joining one that is working through a backlog. */
const DEFAULT_PARTS: readonly Part[] = [Part.rate, Part.cap, Part.shared, Part.scaleOut, Part.ceiling];

const ARM = 'candidate';
/** The cap-bound run: this cap, and calls of about this long. */
const CAP_CONCURRENCY = 4;
const CAP_CALL_MS = 100;
/** The sim's `stable` calls average ≈ 0.8 s (ttft mean ≈ 137 ms + ~40 tokens at 60 tok/s); this scale makes them ≈ 100 ms. */
const CAP_TIME_SCALE = CAP_CALL_MS / 800;
/** Seconds after the cap-bound run during which the candidate answers at once. */
const RECOVERY_SECONDS = 5;
/** The shared run needs partitions for both instances; the others use the config's default. */
const SHARED_PARTITIONS = 6;
/** Scale-out run: the second instance starts this long after the first one's first call. */
const SCALE_OUT_AFTER_MS = 5_000;
const DEFAULT_PARTITIONS = 3;
/** Pre-filled events cover the run plus this much start-up and slack, with a 20% margin: the replay never runs dry. */
const PREFILL_SLACK_SECONDS = 10;
const PREFILL_MARGIN = 1.2;
/** Ceiling: a cap that never binds (replay's own limit is partitions × `replay.batchConcurrency`). */
const CEILING_CONCURRENCY = 1_024;
const SAMPLE_INTERVAL_MS = 100;
/** A second kcat read that ends sooner: how much of kcat's time is waiting at the end of the topic. */
const KCAT_SHORT_WAIT = ['-X', 'fetch.wait.max.ms=10'] as const;
const PROGRESS_EVERY_MS = 5_000;
const RETRY_PAUSE_MS = 10_000;

interface Options {
  seconds: number;
  rps: number;
  concurrency: number;
  capSeconds: number;
  events: number;
  parts: Set<Part>;
  kcat: string;
  kcatRuns: number;
  cpuProf: boolean;
  retries: number;
}

function parseOptions(argv: string[]): Options | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      seconds: { type: 'string', default: '60' },
      rps: { type: 'string', default: '50' },
      concurrency: { type: 'string', default: '64' },
      'cap-seconds': { type: 'string', default: '20' },
      events: { type: 'string', default: '20000' },
      parts: { type: 'string', default: DEFAULT_PARTS.join(',') },
      kcat: { type: 'string', default: 'kcat' },
      'kcat-runs': { type: 'string', default: '3' },
      'cpu-prof': { type: 'boolean', default: false },
      retries: { type: 'string', default: '1' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return 'help';
  const parts = partsFlag(values.parts, PARTS);
  const rps = Number(values.rps);
  if (!Number.isFinite(rps) || rps <= 0) throw new UsageError(`--rps must be a number > 0 (got ${values.rps})`);
  return {
    seconds: integerFlag('--seconds', values.seconds, 5),
    rps,
    concurrency: integerFlag('--concurrency', values.concurrency),
    capSeconds: integerFlag('--cap-seconds', values['cap-seconds'], 5),
    events: integerFlag('--events', values.events, 100),
    parts,
    kcat: values.kcat,
    kcatRuns: integerFlag('--kcat-runs', values['kcat-runs']),
    cpuProf: values['cpu-prof'],
    retries: integerFlag('--retries', values.retries, 0),
  };
}


/** Phase time and how busy this process was meanwhile (replay, sim and harness share its event loop). */
interface ProcessLoad {
  wallMs: number;
  eventLoopUtilization: number;
  /** User + system CPU over wall time; up to 100 × cores. */
  cpuPercent: number;
}

function processMeter(): () => ProcessLoad {
  const elu = performance.eventLoopUtilization();
  const cpu = process.cpuUsage();
  const began = performance.now();
  return () => {
    const wallMs = performance.now() - began;
    const used = process.cpuUsage(cpu);
    return { wallMs, eventLoopUtilization: performance.eventLoopUtilization(elu).utilization, cpuPercent: wallMs > 0 ? ((used.user + used.system) / 1000 / wallMs) * 100 : 0 };
  };
}

interface Context {
  addresses: ReturnType<typeof addressesFromEnv>;
  env: Record<string, string>;
  signal: AbortSignal;
  /** Where replay's warnings and errors go: stderr, as JSON lines. */
  serviceLog: Logger;
}

/** A benchmark part's own topics, group, Redis keys, sim and configuration. */
interface Stage {
  scope: BenchScope;
  sim: SimServer;
  /** Calls the sim took per request id (`x-shadow-request-id`). */
  callsById: Map<string, number>;
  simUrl: string;
  config: ShadowConfig;
  kafka: Kafka;
  redis: Redis;
}

async function openStage(kind: string, input: { partitions: number; rate: { rps?: number; concurrency: number }; sim: { profile: string; overrides?: SimProfilePatch; statsWindowSeconds: number } }, context: Context): Promise<Stage> {
  const scope = benchScope(kind);
  const callsById = new Map<string, number>();
  const sim = createSimServer({
    profile: input.sim.profile,
    overrides: input.sim.overrides,
    statsWindowSeconds: input.sim.statsWindowSeconds,
    onChat: (arrival) => {
      const id = String(arrival.headers['x-shadow-request-id']);
      callsById.set(id, (callsById.get(id) ?? 0) + 1);
    },
  });
  const { url } = await sim.start();
  const config = ShadowConfigSchema.parse({
    // The benchmark creates the topics: instances starting together would race to create them.
    kafka: { clientId: scope.id, topics: scope.topics, partitions: input.partitions, createTopics: false },
    redis: { keyPrefix: scope.keyPrefix, evalQueue: scope.evalQueue },
    replay: { listen: { port: 0 } },
    join: { listen: { port: 0 } },
    evaluator: { listen: { port: 0 } },
    experiment: { id: scope.id, startFrom: 'earliest', candidates: [{ name: ARM, baseUrl: url, rate: input.rate }] },
  });
  const kafka = createKafka({ brokers: context.addresses.kafkaBrokers, clientId: `${scope.id}-bench`, log: silentLogger() });
  const redis = createRedis(context.addresses.redisUrl, `${scope.id}-bench`);
  try {
    await ensureTopics(kafka, [scope.topics.requests, scope.topics.candidateResponses, scope.topics.deadLetter], input.partitions);
  } catch (error) {
    // No stage to close for the caller: let go of what was opened, or the process never exits.
    await sim.close();
    await cleanupScope(scope, { kafkaBrokers: context.addresses.kafkaBrokers, redis }).catch(() => undefined);
    await redis.quit().catch(() => undefined);
    throw error;
  }
  return { scope, sim, callsById, simUrl: url, config, kafka, redis };
}

async function closeStage(stage: Stage, replays: readonly ReplayService[], context: Context, tag: string, afterReplaysClosed?: () => void): Promise<{ cleanup: CleanupReport; outcomes: OutcomeCounts | null; closeMs: number }> {
  const began = performance.now();
  await Promise.all(replays.map((replay) => replay.close().catch((error: unknown) => log(`${tag}: replay close failed: ${String(error)}`))));
  const closeMs = performance.now() - began;
  afterReplaysClosed?.();
  const outcomes = await new OutcomeStore({ redis: stage.redis, keyPrefix: stage.scope.keyPrefix }).counts(stage.scope.id, ARM).catch(() => null);
  await stage.sim.close();
  const cleanup = await cleanupScope(stage.scope, { kafkaBrokers: context.addresses.kafkaBrokers, redis: stage.redis });
  log(`${tag}: cleaned up ${cleanup.topicsDeleted} topics, ${cleanup.groupsDeleted} consumer groups, ${cleanup.redisKeysDeleted} Redis keys${cleanup.problems.length > 0 ? ` (problems: ${cleanup.problems.join('; ')})` : ''}`);
  await stage.redis.quit().catch(() => undefined);
  return { cleanup, outcomes, closeMs };
}

function startReplays(stage: Stage, count: number, context: Context): ReplayService[] {
  return Array.from({ length: count }, () => new ReplayService({ settings: replaySettings(stage.config, context.env), log: context.serviceLog }));
}

// ---------------------------------------------------------------------------------------------
// Parts 1 and 2: pacing, measured at the candidate.

/** When the request topic is filled: before the replay instances start, or once their group is stable. */
const Fill = { beforeStart: 'before-start', afterGroupStable: 'after-group-stable' } as const;
type Fill = (typeof Fill)[keyof typeof Fill];

interface PacedSpec {
  part: Part;
  label: string;
  instances: number;
  partitions: number;
  rps: number;
  concurrency: number;
  sim: { profile: string; overrides?: SimProfilePatch; description: string };
  seconds: number;
  fill: Fill;
  /** Instances after the first start this long after its first call (0: all start together). */
  lateJoinMs: number;
  /** After the run, the candidate answers at once for this long; the pace is measured again. */
  recoverySeconds: number;
}

/** The consumer group as seen once a second while several instances run. */
interface GroupObservation {
  /** Since start() of the instances. */
  atMs: number;
  state: string;
  members: number;
}

interface PacedFigures {
  part: Part;
  label: string;
  id: string;
  spec: PacedSpec;
  prefilled: number;
  /** start() of every instance → first call at the candidate. */
  firstCallAfterStartMs: number | null;
  /** Several instances: start() → the group first seen stable with every instance holding partitions. */
  groupStableAfterStartMs: number | null;
  /** Scale-out run: start() of the first instance → start() of the others. */
  lateJoinAfterStartMs: number | null;
  /** Several instances: the group's state once a second from start() to the end of the run. */
  group: GroupObservation[];
  /** The run's wall-clock seconds: the run starts inside `fromSecond` (its first call) and ends at `toSecond` (exclusive). */
  fromSecond: number | null;
  toSecond: number | null;
  /** The run without its first and last (partial) second. */
  steady: RateWindow | null;
  /** The seconds after the candidate started answering at once, untrimmed (cap run only). */
  recovery: RateWindow | null;
  /** Most calls in flight at the candidate during the run (recovery included). */
  maxInFlight: number | null;
  /** Mean of `inFlight` sampled every 100 ms during the run. */
  meanInFlight: number | null;
  /** Candidate calls per replay instance, from each instance's /metrics. */
  callsPerInstance: number[] | null;
  /** The candidate's counters at the end of the run. */
  candidate: { requests: number; byStatus: Record<string, number>; aborted: number } | null;
  /** Calls the candidate received by the time every instance had closed. */
  callsAfterClose: number | null;
  /** Request ids consumed (`OutcomeStore`), after close. */
  outcomes: OutcomeCounts | null;
  /** Calls the candidate took for a request it had already been called for (redeliveries), counted at the sim by request id. */
  duplicateCalls: number | null;
  process: ProcessLoad | null;
  /** replay.close(): lets the calls that already booked a slot finish. */
  closeMs: number | null;
  /** Arrivals per second from the first one to the end of the run, for plotting. */
  series: Array<{ second: number; count: number }>;
  cleanup: CleanupReport | null;
  error: string | null;
  /** Errors of earlier attempts of this part (see --retries). */
  failedAttempts?: string[];
}

async function runPaced(spec: PacedSpec, context: Context): Promise<PacedFigures> {
  const tag = spec.label;
  const prefilled = Math.ceil(spec.rps * (spec.seconds + spec.recoverySeconds + PREFILL_SLACK_SECONDS) * PREFILL_MARGIN);
  const figures: PacedFigures = {
    part: spec.part,
    label: spec.label,
    id: '',
    spec,
    prefilled,
    firstCallAfterStartMs: null,
    groupStableAfterStartMs: null,
    lateJoinAfterStartMs: null,
    group: [],
    fromSecond: null,
    toSecond: null,
    steady: null,
    recovery: null,
    maxInFlight: null,
    meanInFlight: null,
    callsPerInstance: null,
    candidate: null,
    callsAfterClose: null,
    outcomes: null,
    duplicateCalls: null,
    process: null,
    closeMs: null,
    series: [],
    cleanup: null,
    error: null,
  };
  let stage: Stage | undefined;
  let replays: ReplayService[] = [];
  let stopWatchingGroup = () => Promise.resolve();
  let lateJoin: Promise<void> = Promise.resolve();
  try {
    stage = await openStage(
      `replay-${spec.part}`,
      {
        partitions: spec.partitions,
        rate: { rps: spec.rps, concurrency: spec.concurrency },
        sim: { profile: spec.sim.profile, overrides: spec.sim.overrides, statsWindowSeconds: spec.seconds + spec.recoverySeconds + 600 },
      },
      context,
    );
    figures.id = stage.scope.id;
    const fill = async (done: Stage) => {
      await prefillRequests(done.kafka, done.scope.topics.requests, { count: prefilled, idPrefix: `${done.scope.id}-r` });
      log(`${tag}: filled the request topic with ${prefilled} RequestEvents`);
    };
    log(`\n${tag}: ${stage.scope.id}; candidate sim "${spec.sim.description}" at ${stage.simUrl}; ${spec.instances} replay instance(s), ${spec.partitions} partitions, ${spec.rps} req/s, cap ${spec.concurrency}; topic filled ${spec.fill}`);
    if (spec.fill === Fill.beforeStart) await fill(stage);

    const sim = stage.sim;
    sim.resetStats();
    replays = startReplays(stage, spec.instances, context);
    const startedAt = performance.now();
    const [first, ...others] = replays;
    if (spec.lateJoinMs > 0 && first !== undefined) await first.start();
    else await Promise.all(replays.map((replay) => replay.start()));
    if (spec.instances > 1) {
      const watcher = watchGroup(stage.kafka, `shadow-replay.${stage.scope.id}`, spec.instances, startedAt, figures.group);
      stopWatchingGroup = watcher.stop;
      if (spec.fill === Fill.afterGroupStable) {
        await until(() => replays.every((replay) => replay.ready) && watcher.stableAt() !== null, { timeoutMs: 120_000, intervalMs: 100, what: `${spec.instances} instances to share the group`, signal: context.signal });
        log(`${tag}: group stable with ${spec.instances} members after ${fmt((watcher.stableAt() ?? NaN) / 1000, 2)} s`);
        await fill(stage);
      }
    }
    await until(() => sim.stats().requestsTotal > 0, { timeoutMs: 120_000, what: 'the first call at the candidate', signal: context.signal });
    const runStartMs = Date.now();
    figures.firstCallAfterStartMs = performance.now() - startedAt;
    const fromSecond = Math.floor(runStartMs / 1000);
    const toSecond = fromSecond + spec.seconds;
    figures.fromSecond = fromSecond;
    figures.toSecond = toSecond;
    log(`${tag}: first call ${fmt(figures.firstCallAfterStartMs / 1000, 2)} s after start(); measuring ${spec.seconds} s`);
    if (spec.lateJoinMs > 0) {
      lateJoin = (async () => {
        await sleep(spec.lateJoinMs);
        figures.lateJoinAfterStartMs = performance.now() - startedAt;
        log(`  ${tag}: starting ${others.length} more instance(s) while the first is busy`);
        await Promise.all(others.map((replay) => replay.start()));
      })();
    }

    const meter = processMeter();
    const inFlightSamples: number[] = [];
    await watch({
      untilMs: toSecond * 1000 + 20,
      signal: context.signal,
      onSample: () => inFlightSamples.push(sim.stats().inFlight),
      onProgress: () => {
        const stats = sim.stats();
        const done = Math.floor(Date.now() / 1000) - fromSecond;
        const last = stats.arrivals.at(-2)?.count ?? 0;
        const group = figures.group.at(-1);
        log(`  ${tag}: ${done}/${spec.seconds} s, ${stats.requestsTotal} calls, last full second ${last}, in flight ${stats.inFlight} (max ${stats.maxInFlight})${group === undefined ? '' : `, group ${group.state} with ${group.members} members`}`);
      },
    });
    let recoveryEnd = toSecond;
    if (spec.recoverySeconds > 0 && !context.signal.aborted) {
      sim.setProfile({ timeScale: 0 });
      recoveryEnd = toSecond + spec.recoverySeconds;
      log(`  ${tag}: the candidate now answers at once; measuring ${spec.recoverySeconds} s more`);
      await watch({ untilMs: recoveryEnd * 1000 + 20, signal: context.signal, onSample: () => inFlightSamples.push(sim.stats().inFlight) });
    }
    figures.process = meter();
    await lateJoin;
    await stopWatchingGroup();
    const stable = figures.group.find((observation) => observation.state === 'Stable' && observation.members === spec.instances);
    figures.groupStableAfterStartMs = spec.instances > 1 ? (stable?.atMs ?? null) : null;
    figures.callsPerInstance = await Promise.all(replays.map((replay) => candidateCalls(replay.httpUrl)));
    const stats = sim.stats();
    figures.steady = rateWindow(stats.arrivals, { fromSecond, toSecond, trim: 1 }, spec.rps);
    if (spec.recoverySeconds > 0) figures.recovery = rateWindow(stats.arrivals, { fromSecond: toSecond, toSecond: recoveryEnd, trim: 0 }, spec.rps);
    figures.maxInFlight = stats.maxInFlight;
    figures.meanInFlight = inFlightSamples.length === 0 ? null : inFlightSamples.reduce((sum, value) => sum + value, 0) / inFlightSamples.length;
    figures.series = arrivalSeries(stats.arrivals, fromSecond, recoveryEnd);
    figures.candidate = { requests: stats.requestsTotal, byStatus: { ...stats.byStatus }, aborted: stats.aborted };
    log(`${tag}: ${describeWindow(figures.steady)}; max in flight ${stats.maxInFlight} (cap ${spec.concurrency})${figures.recovery === null ? '' : `; after the candidate recovered: ${describeWindow(figures.recovery)}`}`);
    if (figures.steady.emptySeconds > 0) log(`${tag}: ${figures.steady.emptySeconds} second(s) without any call: a stall (Kafka restarting?) or the topic ran dry, not pacing — consider running again`);
  } catch (error) {
    figures.error = error instanceof Error ? error.message : String(error);
    log(`${tag}: failed: ${figures.error}`);
  } finally {
    await stopWatchingGroup();
    if (stage !== undefined) {
      const sim = stage.sim;
      const closed = await closeStage(stage, replays, context, tag, () => {
        figures.callsAfterClose = sim.stats().requestsTotal;
      });
      figures.cleanup = closed.cleanup;
      figures.outcomes = closed.outcomes;
      figures.closeMs = closed.closeMs;
      figures.duplicateCalls = [...stage.callsById.values()].reduce((sum, calls) => sum + calls - 1, 0);
      if (figures.duplicateCalls > 0) log(`${tag}: ${figures.duplicateCalls} calls were made again for a request already called (${figures.callsAfterClose} calls for ${stage.callsById.size} requests)`);
    }
  }
  return figures;
}

/**
 * Describes the group once a second (state, members) until stopped; `stableAt` is the time
 * since `startedAt` it was first seen stable with every instance holding partitions.
 */
function watchGroup(kafka: Kafka, groupId: string, members: number, startedAt: number, observations: GroupObservation[]): { stableAt: () => number | null; stop: () => Promise<void> } {
  let stopped = false;
  let stableAt: number | null = null;
  const admin = kafka.admin();
  const loop = (async () => {
    await admin.connect();
    try {
      while (!stopped) {
        const { groups } = await admin.describeGroups([groupId]);
        const group = groups[0];
        const observation = { atMs: performance.now() - startedAt, state: group?.state ?? 'Unknown', members: group?.members.length ?? 0 };
        observations.push(observation);
        if (stableAt === null && observation.state === 'Stable' && observation.members === members && group?.members.every((member) => member.memberAssignment.length > 0) === true) stableAt = observation.atMs;
        await sleep(stableAt === null ? 200 : 1_000);
      }
    } finally {
      await admin.disconnect();
    }
  })().catch((error: unknown) => log(`watching group ${groupId} failed: ${error instanceof Error ? error.message : String(error)}`));
  return {
    stableAt: () => stableAt,
    stop: async () => {
      stopped = true;
      await loop;
    },
  };
}

function describeWindow(window: RateWindow): string {
  return `${fmt(window.achievedRps, 2)} req/s over ${window.seconds} s (${fmt(window.achievedPct, 1)}% of target; 1-second windows ${fmt(window.minPct, 0)}–${fmt(window.maxPct, 0)}%)`;
}

/** This instance's candidate calls, all results, from its Prometheus endpoint. */
async function candidateCalls(baseUrl: string): Promise<number> {
  const response = await request(`${baseUrl}/metrics`, { reset: true });
  const text = await response.body.text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith('shadow_replay_candidate_calls_total{')) continue;
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(value)) sum += value;
  }
  return sum;
}

// ---------------------------------------------------------------------------------------------
// Part 3: the ceiling.

interface CeilingFigures {
  id: string;
  events: number;
  partitions: number;
  batchConcurrency: number;
  prefillMs: number | null;
  kcat: {
    found: boolean;
    note: string | null;
    runs: KcatRun[];
    wallMs: number | null;
    firstRecordToEndMs: number | null;
    /**
     * The same read with `-X fetch.wait.max.ms=10`: librdkafka learns it reached the end of a
     * partition from a fetch that waits up to fetch.wait.max.ms (500 ms by default) for more.
     */
    shortWait: { runs: KcatRun[]; wallMs: number | null };
  };
  /** A kafkajs consumer that only counts: the client library's own ceiling. Connect → end, and connect → first batch (joining the group). */
  kafkajs: { records: number; wallMs: number | null; joinMs: number | null } | null;
  replay: {
    /** start() → first call at the candidate (group join, first fetch). */
    firstCallAfterStartMs: number | null;
    /** First candidate call → last candidate response published. */
    spanMs: number | null;
    calls: number;
    published: number;
    errors: number;
    process: ProcessLoad | null;
    /** Redis commands this process sent per event, start() to the last response (Lua scripts by their first command). */
    redisCommandsPerEvent: Record<string, number> | null;
    profiled: boolean;
  } | null;
  eventsPerSecond: { kcat: number | null; kcatRead: number | null; kcatShortWait: number | null; kafkajs: number | null; replay: number | null };
  /** replay ÷ kcat (wall); the issue's goal is ≥ 0.5. */
  ratio: number | null;
  /** replay ÷ kcat from its first record to its end (start-up left out, as it is for replay). */
  ratioToKcatRead: number | null;
  cpuProfile: { path: string; summary: CpuProfileSummary } | null;
  cleanup: CleanupReport | null;
  error: string | null;
  /** Errors of earlier attempts of this part (see --retries). */
  failedAttempts?: string[];
}

async function runCeiling(options: Options, context: Context, startedAt: Date): Promise<CeilingFigures> {
  const tag = 'ceiling';
  const figures: CeilingFigures = {
    id: '',
    events: options.events,
    partitions: DEFAULT_PARTITIONS,
    batchConcurrency: 0,
    prefillMs: null,
    kcat: { found: false, note: null, runs: [], wallMs: null, firstRecordToEndMs: null, shortWait: { runs: [], wallMs: null } },
    kafkajs: null,
    replay: null,
    eventsPerSecond: { kcat: null, kcatRead: null, kcatShortWait: null, kafkajs: null, replay: null },
    ratio: null,
    ratioToKcatRead: null,
    cpuProfile: null,
    cleanup: null,
    error: null,
  };
  let stage: Stage | undefined;
  let replays: ReplayService[] = [];
  try {
    stage = await openStage('replay-ceiling', { partitions: DEFAULT_PARTITIONS, rate: { concurrency: CEILING_CONCURRENCY }, sim: { profile: 'fast', statsWindowSeconds: 600 } }, context);
    figures.id = stage.scope.id;
    figures.batchConcurrency = stage.config.replay.batchConcurrency;
    const topic = stage.scope.topics.requests;
    log(`\n${tag}: ${stage.scope.id}; candidate sim "fast" (instant answers) at ${stage.simUrl}; no rate limit, cap ${CEILING_CONCURRENCY}; ${options.events} events`);
    const prefillBegan = performance.now();
    let nextLine = performance.now() + PROGRESS_EVERY_MS;
    await prefillRequests(stage.kafka, topic, {
      count: options.events,
      idPrefix: `${stage.scope.id}-r`,
      onProgress: (sent) => {
        if (performance.now() < nextLine) return;
        nextLine = performance.now() + PROGRESS_EVERY_MS;
        log(`  ${tag}: pre-filled ${sent}/${options.events}`);
      },
    });
    figures.prefillMs = performance.now() - prefillBegan;
    const inTopic = await topicRecordCount(stage.kafka, topic);
    log(`${tag}: pre-filled ${inTopic} RequestEvents in ${fmt(figures.prefillMs / 1000, 1)} s`);

    // The references first, so nothing else competes with them for the machine.
    for (let run = 1; run <= options.kcatRuns && !context.signal.aborted; run++) {
      const outcome = await readTopicWithKcat({ kcat: options.kcat, brokers: context.addresses.kafkaBrokers, topic, timeoutMs: 120_000 });
      if (!outcome.found) {
        figures.kcat.note = `${outcome.reason}. ${KCAT_INSTALL_HINT}`;
        log(`${tag}: ${figures.kcat.note}`);
        break;
      }
      figures.kcat.found = true;
      figures.kcat.runs.push(outcome.run);
      log(`  ${tag}: kcat run ${run}: ${outcome.run.records} records in ${fmt(outcome.run.wallMs, 0)} ms (first record after ${fmt(outcome.run.firstRecordMs, 0)} ms), exit ${outcome.run.exitCode ?? '?'}${outcome.run.stderr === '' ? '' : `: ${outcome.run.stderr}`}`);
    }
    const goodRuns = figures.kcat.runs.filter((run) => run.exitCode === 0 && run.records === inTopic);
    if (figures.kcat.found && goodRuns.length < figures.kcat.runs.length) figures.kcat.note = `${figures.kcat.runs.length - goodRuns.length} kcat run(s) failed or read a different count than the ${inTopic} in the topic; left out`;
    figures.kcat.wallMs = median(goodRuns.map((run) => run.wallMs));
    figures.kcat.firstRecordToEndMs = median(goodRuns.map((run) => (run.firstRecordMs === null ? null : run.wallMs - run.firstRecordMs)));
    for (let run = 1; figures.kcat.found && run <= options.kcatRuns && !context.signal.aborted; run++) {
      const outcome = await readTopicWithKcat({ kcat: options.kcat, brokers: context.addresses.kafkaBrokers, topic, timeoutMs: 120_000, extraArgs: KCAT_SHORT_WAIT });
      if (outcome.found) figures.kcat.shortWait.runs.push(outcome.run);
    }
    figures.kcat.shortWait.wallMs = median(figures.kcat.shortWait.runs.filter((run) => run.exitCode === 0 && run.records === inTopic).map((run) => run.wallMs));
    if (figures.kcat.found) log(`  ${tag}: kcat ${KCAT_SHORT_WAIT.join(' ')}: median ${fmt(figures.kcat.shortWait.wallMs, 0)} ms`);

    const probe = await readTopicRecords(stage.kafka, topic, { groupId: `${stage.scope.id}-kafkajs-probe`, timeoutMs: 120_000, keep: false });
    figures.kafkajs = {
      records: probe.count,
      wallMs: probe.endAt === null ? null : probe.endAt - probe.startedAt,
      joinMs: probe.firstBatchAt === null ? null : probe.firstBatchAt - probe.startedAt,
    };
    log(`  ${tag}: kafkajs consumer (no work): ${probe.count} records in ${fmt(figures.kafkajs.wallMs, 0)} ms from connecting (first batch after ${fmt(figures.kafkajs.joinMs, 0)} ms)`);
    if (context.signal.aborted) return figures;

    const sim = stage.sim;
    sim.resetStats();
    const redisCommands = countRedisCommands();
    const profiler = options.cpuProf ? await startCpuProfile() : undefined;
    const meter = processMeter();
    replays = startReplays(stage, 1, context);
    const replay = replays[0];
    if (replay === undefined) throw new Error('no replay instance');
    const startEpochMs = Date.now();
    await replay.start();
    const kafka = stage.kafka;
    const candidateTopic = stage.scope.topics.candidateResponses;
    let lastLine = performance.now();
    await until(
      async () => {
        if (performance.now() - lastLine >= PROGRESS_EVERY_MS) {
          lastLine = performance.now();
          log(`  ${tag}: ${sim.stats().requestsTotal}/${options.events} calls at the candidate`);
        }
        return sim.stats().requestsTotal >= options.events && (await topicRecordCount(kafka, candidateTopic)) >= options.events;
      },
      { timeoutMs: 120_000 + 20 * options.events, intervalMs: 50, what: `${options.events} candidate responses published`, signal: context.signal },
    );
    const load = meter();
    const profile = await profiler?.stop();
    const commands = redisCommands.stop();

    const read = await readTopicRecords(kafka, candidateTopic, { groupId: `${stage.scope.id}-responses-reader`, timeoutMs: 120_000 });
    let firstCallAt = Infinity;
    let lastPublishedAt = -Infinity;
    let errors = 0;
    for (const record of read.records) {
      const decoded = decodeEvent(ResponseEventSchema, record.value);
      if (!decoded.ok) {
        errors++;
        continue;
      }
      if (decoded.value.outcome !== 'ok') errors++;
      firstCallAt = Math.min(firstCallAt, decoded.value.timing.sentAt);
      lastPublishedAt = Math.max(lastPublishedAt, record.timestamp);
    }
    const spanMs = Number.isFinite(firstCallAt) && Number.isFinite(lastPublishedAt) ? lastPublishedAt - firstCallAt : null;
    const calls = sim.stats().requestsTotal;
    const perEvent: Record<string, number> = {};
    for (const [command, count] of Object.entries(commands)) perEvent[command] = count / options.events;
    figures.replay = {
      firstCallAfterStartMs: Number.isFinite(firstCallAt) ? firstCallAt - startEpochMs : null,
      spanMs,
      calls,
      published: read.records.length,
      errors,
      process: load,
      redisCommandsPerEvent: perEvent,
      profiled: profile !== undefined,
    };
    const perSecond = (count: number, ms: number | null | undefined) => (typeof ms === 'number' && ms > 0 ? count / (ms / 1000) : null);
    figures.eventsPerSecond = {
      kcat: perSecond(inTopic, figures.kcat.wallMs),
      kcatRead: perSecond(inTopic, figures.kcat.firstRecordToEndMs),
      kcatShortWait: perSecond(inTopic, figures.kcat.shortWait.wallMs),
      kafkajs: perSecond(probe.count, figures.kafkajs.wallMs),
      replay: perSecond(read.records.length, spanMs),
    };
    figures.ratio = ratio(figures.eventsPerSecond.replay, figures.eventsPerSecond.kcat);
    figures.ratioToKcatRead = ratio(figures.eventsPerSecond.replay, figures.eventsPerSecond.kcatRead);
    log(`${tag}: replay: ${read.records.length} responses published in ${fmt((spanMs ?? NaN) / 1000, 2)} s from the first call (${fmt(figures.eventsPerSecond.replay, 0)} events/s), event loop busy ${fmt(load.eventLoopUtilization * 100, 0)}%; ratio to kcat ${fmt(figures.ratio, 3)}`);
    if (profile !== undefined) {
      const path = join(RESULTS_DIR, `replay-${startedAt.toISOString().replace(/[:.]/g, '-')}.cpuprofile`);
      await writeCpuProfile(path, profile);
      figures.cpuProfile = { path, summary: summarizeCpuProfile(profile) };
      log(`${tag}: CPU profile of the replay phase written to ${path}`);
    }
  } catch (error) {
    figures.error = error instanceof Error ? error.message : String(error);
    log(`${tag}: failed: ${figures.error}`);
  } finally {
    if (stage !== undefined) figures.cleanup = (await closeStage(stage, replays, context, tag)).cleanup;
  }
  return figures;
}

// ---------------------------------------------------------------------------------------------
// Waiting.

/** Polls `predicate` until it holds; rejects on the deadline or the signal. */
async function until(predicate: () => boolean | Promise<boolean>, options: { timeoutMs: number; intervalMs?: number; what: string; signal: AbortSignal }): Promise<void> {
  const deadline = performance.now() + options.timeoutMs;
  for (;;) {
    if (options.signal.aborted) throw new Error(`interrupted while waiting for ${options.what}`);
    if (await predicate()) return;
    if (performance.now() > deadline) throw new Error(`timed out after ${options.timeoutMs} ms waiting for ${options.what}`);
    await sleep(options.intervalMs ?? 10);
  }
}

/** Samples every 100 ms and reports progress every 5 s until the wall clock reaches `untilMs`. */
async function watch(options: { untilMs: number; signal: AbortSignal; onSample: () => void; onProgress?: () => void }): Promise<void> {
  let nextProgress = Date.now() + PROGRESS_EVERY_MS;
  while (!options.signal.aborted && Date.now() < options.untilMs) {
    await sleep(Math.min(SAMPLE_INTERVAL_MS, options.untilMs - Date.now()));
    options.onSample();
    if (options.onProgress !== undefined && Date.now() >= nextProgress && Date.now() < options.untilMs) {
      nextProgress += PROGRESS_EVERY_MS;
      options.onProgress();
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

// ---------------------------------------------------------------------------------------------
// Report.

const Result = { pass: 'PASS', miss: 'MISS', notRun: 'not run' } as const;
type Result = (typeof Result)[keyof typeof Result];

interface Goal {
  /** Set on a row that only shows when its part was asked for. */
  part?: Part;
  goal: string;
  target: string;
  measured: string;
  result: Result;
}

function goals(options: Options, paced: PacedFigures[], ceiling: CeilingFigures | null): Goal[] {
  const find = (part: Part) => paced.find((figures) => figures.part === part && figures.error === null && figures.steady !== null);
  const rate = find(Part.rate);
  const cap = find(Part.cap);
  const shared = find(Part.shared);
  const scaleOut = find(Part.scaleOut);
  const within = (window: RateWindow | null | undefined, tolerancePct: number) => window?.achievedPct !== null && window?.achievedPct !== undefined && Math.abs(window.achievedPct - 100) <= tolerancePct;
  const verdict = (present: unknown, ok: boolean): Result => (present === undefined || present === null ? Result.notRun : ok ? Result.pass : Result.miss);
  const achieved = (figures: PacedFigures | undefined) => (figures?.steady === null || figures === undefined ? '–' : `${fmt(figures.steady.achievedRps, 2)} req/s (${fmt(figures.steady.achievedPct, 1)}%) over ${figures.steady.seconds} s`);
  return [
    { goal: 'rate: achieved rate, one instance', target: `${options.rps} req/s ± 2%`, measured: achieved(rate), result: verdict(rate, within(rate?.steady, 2)) },
    { goal: 'rate: busiest 1-second window', target: `≤ 110% of ${options.rps}`, measured: rate?.steady === undefined || rate.steady === null ? '–' : `${rate.steady.maxSecond ?? '–'} calls (${fmt(rate.steady.maxPct, 0)}%), quietest ${rate.steady.minSecond ?? '–'} (${fmt(rate.steady.minPct, 0)}%)`, result: verdict(rate, (rate?.steady?.maxPct ?? Infinity) <= 110) },
    { goal: 'rate: concurrency cap at the candidate', target: `max in flight ≤ ${options.concurrency}`, measured: `${rate?.maxInFlight ?? '–'}`, result: verdict(rate, (rate?.maxInFlight ?? Infinity) <= options.concurrency) },
    { goal: `cap: concurrency cap, ~${CAP_CALL_MS} ms calls`, target: `max in flight ≤ ${CAP_CONCURRENCY}`, measured: `${cap?.maxInFlight ?? '–'}`, result: verdict(cap, (cap?.maxInFlight ?? Infinity) <= CAP_CONCURRENCY) },
    {
      goal: 'cap → recovery: busiest 1-second window ("no bursts")',
      target: `≤ 110% of ${options.rps}`,
      measured: cap?.recovery === undefined || cap.recovery === null ? '–' : `${cap.recovery.maxSecond ?? '–'} calls (${fmt(cap.recovery.maxPct, 0)}%)`,
      result: verdict(cap?.recovery, (cap?.recovery?.maxPct ?? Infinity) <= 110),
    },
    { goal: 'shared: combined rate, two instances', target: `${options.rps} req/s ± 2%`, measured: achieved(shared), result: verdict(shared, within(shared?.steady, 2)) },
    {
      part: Part.scaleOut,
      goal: 'scale-out: calls made twice (no overshoot across instances)',
      target: '0',
      measured: scaleOut === undefined ? '–' : `${scaleOut.duplicateCalls ?? '–'} (group stable: ${groupStableText(scaleOut)}${scaleOut.groupStableAfterStartMs === null ? '' : ' s after the join'})`,
      result: verdict(scaleOut, scaleOut?.duplicateCalls === 0),
    },
    {
      goal: 'ceiling: replay ÷ kcat -C, events/s',
      target: '≥ 0.5',
      measured: ceiling === null || ceiling.error !== null ? '–' : ceiling.ratio === null ? (ceiling.kcat.found ? 'no kcat figure' : 'kcat missing') : `${fmt(ceiling.ratio, 3)} (${fmt(ceiling.eventsPerSecond.replay, 0)} ÷ ${fmt(ceiling.eventsPerSecond.kcat, 0)})`,
      result: ceiling === null || ceiling.error !== null || ceiling.ratio === null ? Result.notRun : ceiling.ratio >= 0.5 ? Result.pass : Result.miss,
    },
  ];
}

function renderPacing(paced: PacedFigures[]): string {
  interface Row {
    figures: PacedFigures;
    window: RateWindow | null;
    label: string;
    candidate: string;
  }
  const rows: Row[] = [];
  for (const figures of paced) {
    rows.push({ figures, window: figures.steady, label: `${figures.label}${figures.error === null ? '' : ' (!)'}`, candidate: figures.spec.sim.description });
    if (figures.recovery !== null) rows.push({ figures, window: figures.recovery, label: `${figures.label} → recovery`, candidate: 'instant answers' });
  }
  const pct = (value: number | null | undefined) => (typeof value === 'number' ? `${fmt(value, 1)}%` : '–');
  const columns: Array<Column<Row>> = [
    { header: 'part', value: (row) => row.label, align: 'left' },
    { header: 'candidate (sim)', value: (row) => row.candidate, align: 'left' },
    { header: 'inst.', value: (row) => String(row.figures.spec.instances) },
    { header: 'target req/s', value: (row) => fmt(row.figures.spec.rps, 0) },
    { header: 'cap', value: (row) => String(row.figures.spec.concurrency) },
    { header: 'seconds', value: (row) => String(row.window?.seconds ?? '–') },
    { header: 'achieved req/s', value: (row) => fmt(row.window?.achievedRps, 2) },
    { header: '% of target', value: (row) => pct(row.window?.achievedPct) },
    { header: 'max 1 s', value: (row) => pct(row.window?.maxPct) },
    { header: 'min 1 s', value: (row) => pct(row.window?.minPct) },
    { header: 'empty s', value: (row) => String(row.window?.emptySeconds ?? '–') },
    { header: 'max in flight', value: (row) => (row.window === row.figures.steady ? String(row.figures.maxInFlight ?? '–') : '') },
    { header: 'mean in flight', value: (row) => (row.window === row.figures.steady ? fmt(row.figures.meanInFlight, 1) : '') },
    { header: 'calls per instance', value: (row) => (row.window === row.figures.steady ? (row.figures.callsPerInstance?.join(' / ') ?? '–') : ''), align: 'left' },
    { header: 'group stable s', value: (row) => (row.window === row.figures.steady && row.figures.spec.instances > 1 ? groupStableText(row.figures) : '') },
    { header: 'dup. calls', value: (row) => (row.window === row.figures.steady ? String(row.figures.duplicateCalls ?? '–') : '') },
    { header: 'non-200', value: (row) => (row.window === row.figures.steady ? String(nonOk(row.figures)) : '') },
  ];
  return renderTable(columns, rows);
}

/** Seconds from start() (or from the late instances' start()) until the group was stable with every instance. */
function groupStableText(figures: PacedFigures): string {
  if (figures.groupStableAfterStartMs === null) return 'never in the run';
  return fmt((figures.groupStableAfterStartMs - (figures.lateJoinAfterStartMs ?? 0)) / 1000, 1);
}

function nonOk(figures: PacedFigures): string {
  if (figures.candidate === null) return '–';
  return String(Object.entries(figures.candidate.byStatus).reduce((sum, [status, count]) => (status === '200' ? sum : sum + count), 0) + figures.candidate.aborted);
}

function renderCeiling(ceiling: CeilingFigures): string {
  interface Row {
    reader: string;
    records: number | null;
    ms: number | null;
    perSecond: number | null;
  }
  const kcatPerSecond = ceiling.eventsPerSecond.kcat;
  const rows: Row[] = [
    { reader: 'kcat -C … -o beginning -e (process start → exit, median)', records: ceiling.kcat.found ? ceiling.events : null, ms: ceiling.kcat.wallMs, perSecond: ceiling.eventsPerSecond.kcat },
    { reader: 'kcat, first record → exit (median)', records: ceiling.kcat.found ? ceiling.events : null, ms: ceiling.kcat.firstRecordToEndMs, perSecond: ceiling.eventsPerSecond.kcatRead },
    { reader: `kcat ${KCAT_SHORT_WAIT.join(' ')} (end of partition seen sooner)`, records: ceiling.kcat.found ? ceiling.events : null, ms: ceiling.kcat.shortWait.wallMs, perSecond: ceiling.eventsPerSecond.kcatShortWait },
    { reader: 'kafkajs consumer doing nothing (connect → end)', records: ceiling.kafkajs?.records ?? null, ms: ceiling.kafkajs?.wallMs ?? null, perSecond: ceiling.eventsPerSecond.kafkajs },
    { reader: `replay, 1 instance (first call → last response published)${ceiling.replay?.profiled === true ? ', PROFILED' : ''}`, records: ceiling.replay?.published ?? null, ms: ceiling.replay?.spanMs ?? null, perSecond: ceiling.eventsPerSecond.replay },
  ];
  const table = renderTable<Row>(
    [
      { header: 'reader of the same topic', value: (row) => row.reader, align: 'left' },
      { header: 'events', value: (row) => (row.records === null ? '–' : String(row.records)) },
      { header: 'seconds', value: (row) => fmt(row.ms === null ? null : row.ms / 1000, 3) },
      { header: 'events/s', value: (row) => fmt(row.perSecond, 0) },
      { header: '÷ kcat', value: (row) => fmt(ratio(row.perSecond, kcatPerSecond), 3) },
    ],
    rows,
  );
  const lines = [table];
  if (ceiling.error !== null) lines.push('', `The ceiling run failed: ${ceiling.error}`);
  if (ceiling.kcat.note !== null) lines.push('', `kcat: ${ceiling.kcat.note}`);
  const replay = ceiling.replay;
  if (replay !== null) {
    const redis = Object.entries(replay.redisCommandsPerEvent ?? {})
      .sort((a, b) => b[1] - a[1])
      .map(([command, perEvent]) => `${command} ${fmt(perEvent, 2)}`)
      .join(', ');
    lines.push(
      '',
      `Replay: ${replay.calls} candidate calls, ${replay.published} responses published, ${replay.errors} errors; first call ${fmt((replay.firstCallAfterStartMs ?? NaN) / 1000, 2)} s after start() (group join); ` +
        `event loop busy ${fmt((replay.process?.eventLoopUtilization ?? NaN) * 100, 0)}%, process CPU ${fmt(replay.process?.cpuPercent, 0)}% (of one core) from start() to the last response (replay and the sim share this process); ` +
        `limits: ${ceiling.partitions} partitions × replay.batchConcurrency ${ceiling.batchConcurrency} records in flight, candidate cap ${CEILING_CONCURRENCY}.`,
      `Redis commands per event, sent by this process from start() to the last response (a Lua script is named after its first command): ${redis === '' ? '–' : redis}.`,
    );
  }
  return lines.join('\n');
}

function renderProfile(summary: CpuProfileSummary, path: string): string {
  interface Row {
    name: string;
    selfMs: number;
    causeMs: number;
  }
  const rows = new Map<string, Row>();
  const row = (name: string): Row => {
    let entry = rows.get(name);
    if (entry === undefined) {
      entry = { name, selfMs: 0, causeMs: 0 };
      rows.set(name, entry);
    }
    return entry;
  };
  for (const entry of summary.byComponent) row(entry.name).selfMs = entry.ms;
  for (const entry of summary.byCause) row(entry.name).causeMs = entry.ms;
  const busy = summary.busyMs;
  const share = (ms: number) => (busy > 0 ? `${fmt((ms / busy) * 100, 1)}%` : '–');
  const components = renderTable<Row>(
    [
      { header: 'component', value: (entry) => entry.name, align: 'left' },
      { header: 'self ms', value: (entry) => fmt(entry.selfMs, 0) },
      { header: 'self % of busy', value: (entry) => (entry.name === 'idle' ? '' : share(entry.selfMs)) },
      { header: 'caused ms', value: (entry) => fmt(entry.causeMs, 0) },
      { header: 'caused % of busy', value: (entry) => (entry.name === 'idle' ? '' : share(entry.causeMs)) },
    ],
    [...rows.values()].filter((entry) => entry.selfMs >= busy / 200 || entry.causeMs >= busy / 200).sort((a, b) => b.causeMs - a.causeMs || b.selfMs - a.selfMs),
  );
  type Fn = CpuProfileSummary['topFunctions'][number];
  const functions = renderTable<Fn>(
    [
      { header: 'function (self time)', value: (entry) => entry.name, align: 'left' },
      { header: 'where', value: (entry) => entry.location, align: 'left' },
      { header: 'self ms', value: (entry) => fmt(entry.ms, 0) },
      { header: '% of busy', value: (entry) => share(entry.ms) },
    ],
    summary.topFunctions,
  );
  return [
    `CPU profile of the ceiling's replay phase, start() to the last response (${fmt(summary.sampledMs / 1000, 2)} s sampled, ${fmt(summary.busyMs / 1000, 2)} s busy; the sim answering the calls runs in this`,
    `process too). "caused" charges Node internals and native built-ins (socket writes, string encoding) to their nearest caller; components under 0.5% left out. Profile: ${path}`,
    '',
    components,
    '',
    functions,
  ].join('\n');
}

function renderGoals(list: Goal[]): string {
  return renderTable<Goal>(
    [
      { header: 'goal (issue 4)', value: (row) => row.goal, align: 'left' },
      { header: 'target', value: (row) => row.target, align: 'left' },
      { header: 'measured', value: (row) => row.measured, align: 'left' },
      { header: 'result', value: (row) => row.result, align: 'left' },
    ],
    list,
  );
}

// ---------------------------------------------------------------------------------------------

async function main(argv: string[]): Promise<number> {
  const start = startBench(argv, { usage: USAGE, parse: parseOptions, finishes: 'the current part', log });
  if (typeof start === 'number') return start;
  const { options, addresses, signal } = start;
  const context: Context = {
    addresses,
    env: { KAFKA_BROKERS: addresses.kafkaBrokers.join(','), REDIS_URL: addresses.redisUrl, LOG_LEVEL: 'silent' },
    signal: signal,
    serviceLog: pino({ level: 'error', base: { service: 'replay' } }, destination(2)),
  };
  const startedAt = new Date();
  const machine = machineInfo();
  log(`bench:replay — ${machine.cpus} CPUs (${machine.cpuModel}), Node ${machine.node}, load average ${machine.loadAverage.join(' ')}; Kafka ${addresses.kafkaBrokers.join(',')}, Redis ${addresses.redisUrl}`);
  log('the candidate is SIMULATED (@shadow-replay/sim), a stand-in for a GPU server; rates and in-flight counts are measured at it. Replay instances and sims share this one process.');

  if (options.parts.has(Part.ceiling)) {
    const version = await kcatVersion(options.kcat);
    if (version === null) log(`WARNING: ${options.kcat} not found. ${KCAT_INSTALL_HINT}`);
    else log(`ceiling reference: ${version} (${options.kcat})`);
  }

  const stable = { profile: 'stable', description: 'stable (~0.8 s per call)' };
  const specs: PacedSpec[] = [];
  const common = { rps: options.rps, seconds: options.seconds, recoverySeconds: 0, lateJoinMs: 0, sim: stable };
  if (options.parts.has(Part.rate)) specs.push({ ...common, part: Part.rate, label: 'rate', instances: 1, partitions: DEFAULT_PARTITIONS, concurrency: options.concurrency, fill: Fill.beforeStart });
  if (options.parts.has(Part.cap)) {
    specs.push({
      part: Part.cap,
      label: 'cap',
      instances: 1,
      partitions: DEFAULT_PARTITIONS,
      rps: options.rps,
      concurrency: CAP_CONCURRENCY,
      sim: { profile: 'stable', overrides: { timeScale: CAP_TIME_SCALE }, description: `stable × ${CAP_TIME_SCALE} (~${CAP_CALL_MS} ms per call)` },
      seconds: options.capSeconds,
      fill: Fill.beforeStart,
      lateJoinMs: 0,
      recoverySeconds: RECOVERY_SECONDS,
    });
  }
  const shared = { ...common, instances: 2, partitions: SHARED_PARTITIONS, concurrency: options.concurrency };
  if (options.parts.has(Part.shared)) specs.push({ ...shared, part: Part.shared, label: 'shared', fill: Fill.afterGroupStable, lateJoinMs: 0 });
  if (options.parts.has(Part.scaleOut)) specs.push({ ...shared, part: Part.scaleOut, label: 'scale-out', fill: Fill.beforeStart, lateJoinMs: SCALE_OUT_AFTER_MS });

  const results: PacedFigures[] = [];
  for (const spec of specs) {
    if (signal.aborted) break;
    results.push(await withRetries(spec.label, options.retries, signal, () => runPaced(spec, context)));
  }
  const ceiling = options.parts.has(Part.ceiling) && !signal.aborted ? await withRetries('ceiling', options.retries, signal, () => runCeiling(options, context, startedAt)) : null;

  const goalList = goals(options, results, ceiling).filter((goal) => goal.part === undefined || options.parts.has(goal.part));
  const sections = [
    'The candidate is SIMULATED (@shadow-replay/sim) and stands in for a GPU server; every rate and in-flight figure is counted AT it. Replay instances, the sims and this',
    'harness share one Node.js process; Kafka and Redis run on the same machine. The steady window leaves out the first and last second of each run.',
  ];
  if (results.length > 0) sections.push('', 'Pacing, measured at the candidate (1-second windows as % of the target; "→ recovery" = the seconds after the candidate began answering at once):', '', renderPacing(results));
  if (ceiling !== null) sections.push('', 'Ceiling: an instantly answering candidate, no rate limit; every reader reads the same pre-filled request topic to its end:', '', renderCeiling(ceiling));
  if (ceiling?.cpuProfile !== null && ceiling?.cpuProfile !== undefined) sections.push('', renderProfile(ceiling.cpuProfile.summary, ceiling.cpuProfile.path));
  sections.push('', 'Goals (printed, not asserted):', '', renderGoals(goalList));
  process.stdout.write(`\n${sections.join('\n')}\n`);

  const path = await writeResults('replay', startedAt, {
    benchmark: 'replay',
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    note: 'The candidate is simulated (@shadow-replay/sim), a stand-in for a GPU server; rates and in-flight counts are measured at it. Replay instances, sims and the harness run in one Node.js process; Kafka and Redis on the same machine.',
    machine,
    parameters: {
      ...options,
      parts: [...options.parts],
      capConcurrency: CAP_CONCURRENCY,
      capTimeScale: CAP_TIME_SCALE,
      recoverySeconds: RECOVERY_SECONDS,
      sharedPartitions: SHARED_PARTITIONS,
      partitions: DEFAULT_PARTITIONS,
      ceilingConcurrency: CEILING_CONCURRENCY,
      prefill: `ceil(rps × (seconds + recovery + ${PREFILL_SLACK_SECONDS}) × ${PREFILL_MARGIN})`,
      kafkaBrokers: addresses.kafkaBrokers,
      redisUrl: addresses.redisUrl,
    },
    interrupted: signal.aborted,
    goals: goalList,
    paced: results,
    ceiling,
  });
  process.stdout.write(`\nresults: ${path}\n`);
  const clean = results.every((figures) => figures.error === null) && (ceiling === null || ceiling.error === null) && results.length === specs.length;
  if (!clean) log('some parts failed or were interrupted: see "error" in the JSON (a Kafka restart during a run is worth a second try)');
  return signal.aborted ? 130 : clean ? 0 : 1;
}

/**
 * Runs a part again, with fresh topics and keys, when it failed (Kafka restarting under someone's
 * fault test, say); the errors of the failed attempts stay in the JSON.
 */
async function withRetries<Figures extends { error: string | null; failedAttempts?: string[] }>(label: string, retries: number, signal: AbortSignal, run: () => Promise<Figures>): Promise<Figures> {
  const failed: string[] = [];
  for (let attempt = 0; ; attempt++) {
    const figures = await run();
    if (figures.error === null || signal.aborted || attempt >= retries) return { ...figures, failedAttempts: failed };
    failed.push(figures.error);
    log(`${label}: attempt ${attempt + 1} failed (${figures.error}); running it again (--retries ${retries})`);
    await sleep(RETRY_PAUSE_MS);
  }
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  process.stderr.write(`bench:replay failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
}
