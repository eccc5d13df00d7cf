/**
 * `npm run bench:gateway`: what the gateway costs the live path, and whether anything behind
 * it can slow users down (issue 3, "Performance goals"). Every part runs in an OS process of
 * its own, as in production: the gateway and replay through the CLI (`shadow-replay
 * gateway|replay --config FILE`), the simulated models (`@shadow-replay/sim`, standing in for
 * GPU servers) and an open-loop load generator in helper processes, nginx as Debian ships it.
 * Load is offered at a fixed rate on loopback. The machine is shared, so every comparison is
 * made side by side: the paths compared take turns in short blocks (ABBA order) within one
 * case, with the same prompts, and the figures are pooled per path.
 *  - overhead: directly to the stable model, through the gateway (Kafka healthy), through nginx
 *    (plain proxy: what any proxy hop costs in this harness);
 *  - stream: the same with every answer streamed: gaps between content chunks at the client;
 *  - long-calls: the stable model at its real pace (~0.8 s a call, ~400 calls in flight);
 *  - kafka-down: a healthy gateway and a second one whose Kafka connection is cut (through a TCP
 *    proxy: the shared broker keeps running) during its first block;
 *  - nginx: nginx with `mirror` to a slow (2 s) target;
 *  - shadow-busy: one gateway, replay behind it calling a 2 s candidate with a high concurrency
 *    cap, paused (shadow path idle) and resumed (saturated, the machine busy with it) in turns.
 * Nothing is asserted; the goals are printed next to the figures.
 */
import { copyFile, mkdir, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import type { Profiler } from 'node:inspector';
import os from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { ShadowConfigSchema, type TopicsConfig } from '@shadow-replay/contracts';
import { addressesFromEnv, createKafka, createRedis, ensureTopics, silentLogger, waitFor } from '@shadow-replay/platform';
import type { SimProfilePatch, SimStats } from '@shadow-replay/sim';
import type { Kafka } from 'kafkajs';
import { request } from 'undici';
import { integerFlag, partsFlag, log, numberFlag, startBench, UsageError } from './lib/cli.js';
import { BenchWorker } from './lib/bench-worker-rpc.js';
import { summarizeCpuProfile, type CpuProfileSummary, type TimeShare } from './lib/cpu-profile.js';
import { CliService, freePort, metricByLabel, metricSum } from './lib/cli-service.js';
import { KafkaCutMode, startKafkaCutProxy, type KafkaCutProxy } from './lib/kafka-cut-proxy.js';
import { NGINX_INSTALL_HINT, NginxMirror, PLAIN_PREFIX, nginxVersion } from './lib/nginx-mirror.js';
import { StreamMode, type OpenLoopOptions, type OpenLoopResult } from './lib/open-loop-load.js';
import { cpuBetween, cpuSnapshot, type CpuUse, type ProcessEntry } from './lib/process-cpu.js';
import { RESULTS_DIR, fmt, machineInfo, percentile, renderTable, summarizeLatency, writeResults, type Column, type LatencySummary } from './lib/report.js';
import { benchScope, cleanupScope, type BenchScope, type CleanupReport } from './lib/scope.js';

const Part = { overhead: 'overhead', stream: 'stream', longCalls: 'long-calls', kafkaDown: 'kafka-down', nginx: 'nginx', shadowBusy: 'shadow-busy' } as const;
type Part = (typeof Part)[keyof typeof Part];
const PARTS: readonly Part[] = Object.values(Part);

const USAGE = `Usage: npm run bench:gateway [-- --seconds S] [--rate R] [--parts LIST] [--nginx PATH] …

The gateway's cost on the live path and its isolation from Kafka and from the shadow path, at a
fixed offered load from a separate load-generator process on loopback, next to nginx (plain and
with mirror). Models are SIMULATED (@shadow-replay/sim), standing in for GPU servers. Needs Kafka
and Redis (KAFKA_BROKERS, default 127.0.0.1:9092, a single broker for kafka-down; REDIS_URL,
default redis://127.0.0.1:6379) and nginx for its paths. Prints tables and writes
bench/results/gateway-<timestamp>.json. About 4 minutes with the defaults.

  --seconds S           measured seconds per path in each case (default 16)
  --rate R              offered load, requests/s (default 500)
  --parts LIST          comma-separated, from ${PARTS.join(',')}
                        (default: all)
  --block-seconds B     paths compared take turns in blocks of about B s (default 2; shadow-busy:
                        at least two calls of the slow target, 4 s)
  --warmup-seconds W    load per path before measuring, not counted (default 5)
  --long-seconds L      long-calls: seconds per path (default 5; the gateway's backlog drains after)
  --stable-scale X      timeScale of the stable model (profile "stable", TTFT fixed at its 120 ms
                        median): 0.1 makes a call ~80 ms (default 0.1); long-calls uses 1
  --shadow-ms M         latency of the shadow target (nginx's mirror, replay's candidate) (default 2000)
  --replay-concurrency C  the candidate's concurrency cap in shadow-busy (default 512)
  --kafka-cut MODE      refuse (like a stopped broker) or blackhole (packets vanish) (default refuse)
  --connections N       keep-alive connections the load generator may open per target (default 1024)
  --timeout-ms T        a request not answered within T ms (queueing included) fails (default 30000)
  --nginx PATH          the nginx executable (default nginx)
  --cpu-prof            profile the first gateway (node --cpu-prof, its whole life: warm-up, overhead,
                        stream, long-calls, kafka-down's healthy side), summarise where its CPU went
                        and write bench/results/gateway-<timestamp>.cpuprofile; the profiler costs
                        CPU too, so the latency figures of such a run are not the ones to quote
  --help                this text
`;

const ARM = 'candidate';
const PARTITIONS = 3;
/** The `stable` profile's median time to first token, made constant: the same prompt then takes the same time on every path. */
const STABLE_TTFT_MS = 120;
/** Goals of issue 3. */
const GOAL = { addedP50Ms: 0.5, addedP99Ms: 2, isolationP99Pct: 5, streamGapP99Ms: 1 } as const;
const HEALTHY_KAFKA_TIMEOUT_MS = 30_000;
/** Process names in the CPU figures. */
const Proc = {
  load: 'load generator',
  stable: 'stable model',
  bench: 'bench (+ Kafka proxy)',
  gateway: 'gateway',
  gatewayCut: 'gateway (Kafka cut)',
  replay: 'replay',
  shadow: 'slow target',
  nginx: 'nginx',
} as const;

interface Options {
  seconds: number;
  rate: number;
  parts: Set<Part>;
  blockSeconds: number;
  warmupSeconds: number;
  longSeconds: number;
  stableScale: number;
  shadowMs: number;
  replayConcurrency: number;
  kafkaCut: KafkaCutMode;
  connections: number;
  timeoutMs: number;
  nginx: string;
  cpuProf: boolean;
}

function parseOptions(argv: string[]): Options | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      seconds: { type: 'string', default: '16' },
      rate: { type: 'string', default: '500' },
      parts: { type: 'string', default: PARTS.join(',') },
      'block-seconds': { type: 'string', default: '2' },
      'warmup-seconds': { type: 'string', default: '5' },
      'long-seconds': { type: 'string', default: '5' },
      'stable-scale': { type: 'string', default: '0.1' },
      'shadow-ms': { type: 'string', default: '2000' },
      'replay-concurrency': { type: 'string', default: '512' },
      'kafka-cut': { type: 'string', default: KafkaCutMode.refuse },
      connections: { type: 'string', default: '1024' },
      'timeout-ms': { type: 'string', default: '30000' },
      nginx: { type: 'string', default: 'nginx' },
      'cpu-prof': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return 'help';
  const parts = partsFlag(values.parts, PARTS);
  const kafkaCut = values['kafka-cut'];
  if (kafkaCut !== KafkaCutMode.refuse && kafkaCut !== KafkaCutMode.blackhole) throw new UsageError(`--kafka-cut must be refuse or blackhole (got ${kafkaCut})`);
  return {
    seconds: numberFlag('--seconds', values.seconds, 2),
    rate: numberFlag('--rate', values.rate, 1),
    parts,
    blockSeconds: numberFlag('--block-seconds', values['block-seconds'], 1),
    warmupSeconds: numberFlag('--warmup-seconds', values['warmup-seconds'], 0),
    longSeconds: numberFlag('--long-seconds', values['long-seconds'], 1),
    stableScale: numberFlag('--stable-scale', values['stable-scale'], 0),
    shadowMs: numberFlag('--shadow-ms', values['shadow-ms'], 1),
    replayConcurrency: integerFlag('--replay-concurrency', values['replay-concurrency']),
    kafkaCut,
    connections: integerFlag('--connections', values.connections),
    timeoutMs: integerFlag('--timeout-ms', values['timeout-ms'], 100),
    nginx: values.nginx,
    cpuProf: values['cpu-prof'],
  };
}



// ---------------------------------------------------------------------------------------------
// What is measured.

/** Where load goes; `proxy` names the process under test on that path (for its CPU figures). */
interface Target {
  name: string;
  url: string;
  proxy?: string;
}

/** One open-loop block and what the processes used meanwhile. */
interface LoadRun {
  result: OpenLoopResult;
  cpu: CpuUse;
  /** Calls the stable model had in flight at most during the block. */
  stableMaxInFlight: number | null;
}

interface CpuFigures {
  /** CPU of each process, % of one core. */
  percent: Record<string, number>;
  /** Share of the wall time each process's main thread was runnable but had no CPU, %. */
  waitPercent: Record<string, number>;
  /** The whole machine (every core, every user), % busy. */
  machineBusyPct: number | null;
  /** CPU ms of the process under test per answered request. */
  proxyMsPerRequest: number | null;
}

/** One path of one case, its blocks pooled. */
interface PathFigures {
  part: Part;
  path: string;
  url: string;
  proxy: string | null;
  offeredRps: number;
  /** Seconds of offered load (all blocks). */
  seconds: number;
  sent: number;
  ok: number;
  failed: number;
  failures: Record<string, number>;
  /** Answers per second: successful requests ÷ (first due time → last answer), summed over blocks. */
  answeredRps: number | null;
  /** Hand-over to the client pool → last body byte, successful requests. */
  latencyMs: LatencySummary;
  /** How late the generator handed requests over against their due times (its own lag, not the system's). */
  generatorLateMs: { p50: number | null; p99: number | null; max: number | null };
  /** Requests in flight at the client at most (waiting for a connection included). */
  maxInFlight: number;
  /** Connections the client pool held at most (the pool lives across blocks: earlier blocks' connections count). */
  maxConnections: number;
  /** Calls the stable model had in flight at most (what the proxy let through at once). */
  stableMaxInFlight: number | null;
  /** Streamed answers: send → first content chunk, and gaps between successive content chunks. */
  firstChunkMs: LatencySummary | null;
  chunkGapsMs: LatencySummary | null;
  cpu: CpuFigures;
  /** Each block on its own: how steady the figures were. */
  blocks: Array<{ n: number; p50: number | null; p99: number | null; startedAt: string }>;
  /** One block only: per second from the first due time (`second` 0). */
  perSecond: Array<{ second: number; sent: number; ok: number; failed: number; p50: number | null; p99: number | null; max: number | null }>;
}

/** A path against the reference path of the same case (direct, or the healthy gateway). */
interface Comparison {
  path: string;
  reference: string;
  /** path − reference. */
  addedP50Ms: number | null;
  addedP99Ms: number | null;
  /** p99 change, %. */
  p99ChangePct: number | null;
  /** Median over prompts sent on both paths of (path latency − reference latency) for the same prompt. */
  samePromptMedianMs: number | null;
  pairs: number;
  /** Each round's added p50 / p99 (a round = one block per path). */
  roundsAddedP50Ms: Array<number | null>;
  roundsAddedP99Ms: Array<number | null>;
  /** Streaming: gap between content chunks, path − reference. */
  gapAddedP50Ms: number | null;
  gapAddedP99Ms: number | null;
}

interface CaseFigures {
  part: Part;
  paths: PathFigures[];
  comparisons: Comparison[];
}

interface PublishCounters {
  sent: number | null;
  droppedBufferFull: number | null;
  droppedSendFailed: number | null;
  droppedShutdown: number | null;
  bufferDepth: number | null;
}

interface KafkaDownFigures extends CaseFigures {
  mode: KafkaCutMode;
  /** Seconds into the cut gateway's first block. */
  cutAfterS: number | null;
  /** Requests to the cut gateway sent before the cut (left out of its path figures). */
  beforeCut: LatencySummary & { failed: number };
  /** The cut gateway's publish counters at the cut and after its last block (whole process life). */
  publish: { atCut: PublishCounters | null; atEnd: PublishCounters };
  proxy: { rewrites: number; connectionsAccepted: number };
  /** SIGTERM → exit with Kafka still unreachable: the publish buffer's flush deadline at work. */
  shutdown: { exitCode: number | null; seconds: number };
}

interface SlowTargetFigures {
  /** Calls the slow target received while the path was loaded, per second of load. */
  calls: number;
  callsPerSecond: number;
  /** Of the requests offered to the live path. */
  shadowedPct: number;
  maxInFlight: number;
  byStatus: Record<string, number>;
}

interface ShadowBusyFigures extends CaseFigures {
  replayConcurrency: number;
  /** The candidate while the shadow path was busy, and while it was paused. */
  busyTarget: SlowTargetFigures;
  idleTarget: SlowTargetFigures;
  /** Replay's counters at the end (its /metrics): request events read and candidate calls by result. */
  replay: { consumed: number | null; callsByResult: Record<string, number> };
  publish: PublishCounters;
}

interface NginxMirrorFigures extends CaseFigures {
  version: string;
  target: SlowTargetFigures;
  /** Mirror calls that reached the target after the last user answer. */
  targetCallsAfterLoad: number;
}

interface Figures {
  overhead: CaseFigures | null;
  stream: CaseFigures | null;
  longCalls: CaseFigures | null;
  kafkaDown: KafkaDownFigures | null;
  nginx: NginxMirrorFigures | null;
  shadowBusy: ShadowBusyFigures | null;
  nginxVersion: string | null;
  /** With --cpu-prof: where the first gateway's CPU went. */
  gatewayProfile: { file: string; summary: CpuProfileSummary } | null;
  /** Parts not measured and why. */
  skipped: Array<{ part: Part; reason: string }>;
  /** Load average when each part started: how busy the shared machine was. */
  loadAverage: Record<string, number[]>;
  errors: string[];
}

// ---------------------------------------------------------------------------------------------
// Processes.

interface Context {
  startedAt: Date;
  options: Options;
  scope: BenchScope;
  dir: string;
  kafka: Kafka;
  kafkaBrokers: string[];
  env: Record<string, string>;
  signal: AbortSignal;
}

/** Everything a run starts, closed in reverse order whatever happened. */
class Processes {
  stableSim: BenchWorker | undefined;
  stableUrl = '';
  shadowSim: BenchWorker | undefined;
  shadowUrl = '';
  load: BenchWorker | undefined;
  gateway: CliService | undefined;
  gatewayCut: CliService | undefined;
  replay: CliService | undefined;
  proxy: KafkaCutProxy | undefined;
  nginx: NginxMirror | undefined;

  /** The processes whose CPU a phase reports (those running now). */
  entries(): Map<string, ProcessEntry> {
    const entries = new Map<string, ProcessEntry>([
      [Proc.load, { pid: this.load?.pid, tree: false }],
      [Proc.stable, { pid: this.stableSim?.pid, tree: false }],
      [Proc.bench, { pid: process.pid, tree: false }],
    ]);
    const add = (name: string, pid: number | undefined, alive: boolean, tree = false) => {
      if (alive) entries.set(name, { pid, tree });
    };
    add(Proc.gateway, this.gateway?.pid, this.gateway?.alive === true);
    add(Proc.gatewayCut, this.gatewayCut?.pid, this.gatewayCut?.alive === true);
    add(Proc.replay, this.replay?.pid, this.replay?.alive === true);
    add(Proc.shadow, this.shadowSim?.pid, this.shadowSim !== undefined);
    add(Proc.nginx, this.nginx?.pid, this.nginx?.alive === true, true);
    return entries;
  }

  async stopServices(): Promise<void> {
    await this.replay?.stop();
    this.replay = undefined;
    await Promise.all([this.gateway?.stop(), this.gatewayCut?.stop()]);
    this.gateway = undefined;
    this.gatewayCut = undefined;
  }

  async close(): Promise<void> {
    const steps: Array<[string, () => Promise<unknown>]> = [
      ['nginx', async () => this.nginx?.stop()],
      ['services', () => this.stopServices()],
      ['kafka proxy', async () => this.proxy?.close()],
      ['load generator', async () => this.load?.close()],
      ['slow target', async () => this.shadowSim?.close()],
      ['stable model', async () => this.stableSim?.close()],
    ];
    for (const [name, step] of steps) {
      try {
        await step();
      } catch (error) {
        log(`closing ${name} failed: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  }
}

function topicsFor(scope: BenchScope, stage: string): TopicsConfig {
  const prefix = `${scope.id}.${stage}`;
  return { requests: `${prefix}.requests`, stableResponses: `${prefix}.responses.stable`, candidateResponses: `${prefix}.responses.candidate`, evaluations: `${prefix}.evaluations`, deadLetter: `${prefix}.dlq` };
}

/** A gateway's (and replay's) configuration; parsed here so a mistake fails before any process starts. */
function serviceConfig(context: Context, input: { stage: string; gatewayPort: number; replayPort?: number; stableUrl: string; shadowUrl?: string }): Record<string, unknown> {
  const { scope, options } = context;
  const config: Record<string, unknown> = {
    kafka: { clientId: `${scope.id}-${input.stage}`, topics: topicsFor(scope, input.stage), partitions: PARTITIONS, createTopics: false },
    redis: { keyPrefix: scope.keyPrefix, evalQueue: scope.evalQueue },
    gateway: { listen: { host: '127.0.0.1', port: input.gatewayPort }, stable: { name: 'stable', baseUrl: input.stableUrl } },
  };
  if (input.replayPort !== undefined && input.shadowUrl !== undefined) {
    config.experiment = { id: scope.id, startFrom: 'earliest', candidates: [{ name: ARM, baseUrl: input.shadowUrl, rate: { concurrency: options.replayConcurrency } }] };
    // Each partition's batch may hold this many calls: together enough to reach the cap.
    config.replay = { listen: { host: '127.0.0.1', port: input.replayPort }, batchConcurrency: Math.ceil(options.replayConcurrency / PARTITIONS) + 1 };
  }
  ShadowConfigSchema.parse(config);
  return config;
}

async function startGateway(processes: Processes, context: Context, stage: string, kafkaBrokers: string, profileDir?: string): Promise<CliService> {
  const dir = join(context.dir, stage);
  await mkdir(dir, { recursive: true });
  await ensureTopics(context.kafka, Object.values(topicsFor(context.scope, stage)), PARTITIONS);
  const port = await freePort();
  const nodeArgs = profileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${profileDir}`];
  return CliService.start({ service: 'gateway', config: serviceConfig(context, { stage, gatewayPort: port, stableUrl: processes.stableUrl }), port, env: { ...context.env, KAFKA_BROKERS: kafkaBrokers }, dir, nodeArgs });
}

/** The profile node wrote when the profiled gateway exited, summarised and copied next to the results. */
async function gatewayProfile(context: Context, profileDir: string): Promise<{ file: string; summary: CpuProfileSummary } | null> {
  const written = (await readdir(profileDir).catch(() => [])).filter((name) => name.endsWith('.cpuprofile'));
  // Node writes one profile per thread, `CPU.<date>.<time>.<pid>.<thread id>.<seq>.cpuprofile`:
  // the live path is the main thread (id 0); the gateway's publisher thread writes another.
  const first = written.find((name) => name.split('.')[4] === '0') ?? written[0];
  if (first === undefined) {
    log('--cpu-prof: the gateway wrote no profile (did it exit cleanly?)');
    return null;
  }
  const profile = JSON.parse(await readFile(join(profileDir, first), 'utf8')) as Profiler.Profile;
  await mkdir(RESULTS_DIR, { recursive: true });
  const file = join(RESULTS_DIR, `gateway-${context.startedAt.toISOString().replace(/[:.]/g, '-')}.cpuprofile`);
  await copyFile(join(profileDir, first), file);
  return { file, summary: summarizeCpuProfile(profile, 12) };
}

async function startSlowTarget(processes: Processes, context: Context): Promise<string> {
  if (processes.shadowSim !== undefined) return processes.shadowUrl;
  processes.shadowSim = BenchWorker.start('slow-target');
  // Answers (streamed or not) come whole after `shadowMs`: a slow shadow candidate or mirror target.
  const overrides: SimProfilePatch = { ttftMs: { median: context.options.shadowMs, p99: context.options.shadowMs }, tokensPerSecond: 1_000_000, timeScale: 1 };
  processes.shadowUrl = (await processes.shadowSim.call('startSim', { profile: 'stable', overrides, statsWindowSeconds: 600 })).url;
  return processes.shadowUrl;
}

function stablePatch(scale: number): SimProfilePatch {
  return { ttftMs: { median: STABLE_TTFT_MS, p99: STABLE_TTFT_MS }, timeScale: scale };
}

async function publishCounters(gateway: CliService): Promise<PublishCounters> {
  const text = await gateway.metrics();
  const dropped = (reason: string) => metricSum(text, 'shadow_gateway_publish_dropped_total', `reason="${reason}"`) ?? (text === null ? null : 0);
  return {
    sent: metricSum(text, 'shadow_gateway_publish_sent_total'),
    droppedBufferFull: dropped('buffer_full'),
    droppedSendFailed: dropped('send_failed'),
    droppedShutdown: dropped('shutdown'),
    bufferDepth: metricSum(text, 'shadow_gateway_buffer_depth'),
  };
}

/** Waits until the gateway has published (warm-up traffic): the Kafka path is up before anything is measured. */
async function waitForPublishing(gateway: CliService): Promise<void> {
  await waitFor(async () => ((await publishCounters(gateway)).sent ?? 0) > 0, { timeoutMs: HEALTHY_KAFKA_TIMEOUT_MS, intervalMs: 250, what: `the gateway at ${gateway.url} to publish its first events to Kafka` });
}

// ---------------------------------------------------------------------------------------------
// Load.

async function offer(processes: Processes, context: Context, input: { url: string; seconds: number; firstIndex: number; idPrefix: string; stream: StreamMode; chunkTiming: boolean; onStart?: () => void }): Promise<LoadRun> {
  const load = processes.load;
  if (load === undefined) throw new Error('no load generator');
  const params: OpenLoopOptions & { connections: number } = {
    baseUrl: input.url,
    rate: context.options.rate,
    seconds: input.seconds,
    firstIndex: input.firstIndex,
    idPrefix: input.idPrefix,
    stream: input.stream,
    timeoutMs: context.options.timeoutMs,
    chunkTiming: input.chunkTiming,
    connections: context.options.connections,
  };
  const entries = processes.entries();
  await processes.stableSim?.call('resetSimStats', {});
  const before = cpuSnapshot(entries);
  const running = load.call('load', params);
  input.onStart?.();
  const result = await running;
  const cpu = cpuBetween(before, cpuSnapshot(entries));
  const stable = await processes.stableSim?.call('simStats', {});
  return { result, cpu, stableMaxInFlight: stable?.maxInFlight ?? null };
}

async function warmUp(processes: Processes, context: Context, targets: readonly Target[], tag: string): Promise<void> {
  if (context.options.warmupSeconds <= 0) return;
  for (const target of targets) {
    const { result } = await offer(processes, context, { url: target.url, seconds: context.options.warmupSeconds, firstIndex: 0, idPrefix: `${context.scope.id}-warm-${tag}-${target.name}`, stream: StreamMode.half, chunkTiming: false });
    log(`  warm-up ${target.name}: ${result.ok}/${result.sent} answered${result.failed > 0 ? `, ${result.failed} failed (${Object.keys(result.failures).join(', ')})` : ''}`);
  }
}

interface AlternateInput {
  seconds: number;
  /** @defaultValue `--block-seconds` */
  blockSeconds?: number;
  stream: StreamMode;
  chunkTiming: boolean;
  /** Runs before a block is offered (pausing or resuming the shadow path). */
  beforeBlock?: (target: Target, round: number) => Promise<void>;
  /** Runs as a block starts (scheduling a cut). */
  onBlockStart?: (target: Target, round: number) => void;
  /** Runs after a block (reading the slow target's counters). */
  afterBlock?: (target: Target, round: number, run: LoadRun) => Promise<void>;
}

/**
 * The paths take turns in blocks (ABBA order, so none always goes first), each round with the
 * same prompts on every path: they see the same machine and the model gives the same answers.
 */
async function alternate(processes: Processes, context: Context, part: Part, targets: readonly Target[], input: AlternateInput): Promise<Map<string, LoadRun[]>> {
  const rounds = Math.max(1, Math.round(input.seconds / (input.blockSeconds ?? context.options.blockSeconds)));
  const blockSeconds = input.seconds / rounds;
  const perBlock = Math.round(context.options.rate * blockSeconds);
  const runs = new Map<string, LoadRun[]>(targets.map((target) => [target.name, []]));
  for (let round = 0; round < rounds && !context.signal.aborted; round++) {
    const order = round % 2 === 0 ? targets : [...targets].reverse();
    for (const target of order) {
      await input.beforeBlock?.(target, round);
      const run = await offer(processes, context, {
        url: target.url,
        seconds: blockSeconds,
        firstIndex: round * perBlock,
        idPrefix: `${context.scope.id}-${part}-${slug(target.name)}-${round}`,
        stream: input.stream,
        chunkTiming: input.chunkTiming,
        onStart: () => input.onBlockStart?.(target, round),
      });
      runs.get(target.name)?.push(run);
      await input.afterBlock?.(target, round, run);
      const latency = summarizeLatency(run.result.latenciesMs);
      log(`  ${part} ${round + 1}/${rounds} ${target.name}: ${run.result.ok}/${run.result.sent} answered, p50 ${fmt(latency.p50, 2)} ms, p99 ${fmt(latency.p99, 2)} ms${run.result.failed > 0 ? `, ${run.result.failed} FAILED` : ''}`);
    }
  }
  return runs;
}

function slug(name: string): string {
  return name.replace(/[^A-Za-z0-9]+/g, '-');
}

function pathFigures(part: Part, target: Target, runs: readonly LoadRun[], offeredRps: number): PathFigures {
  const all = (pick: (result: OpenLoopResult) => readonly number[]) => runs.flatMap((run) => pick(run.result));
  const latencies = all((result) => result.latenciesMs);
  const late = all((result) => result.lateMs);
  const gaps = all((result) => result.chunkGapsMs);
  const firstChunks = all((result) => result.firstChunkMs);
  const failures: Record<string, number> = {};
  for (const run of runs) for (const [reason, count] of Object.entries(run.result.failures)) failures[reason] = (failures[reason] ?? 0) + count;
  const elapsedMs = runs.reduce((sum, run) => sum + run.result.elapsedMs, 0);
  const ok = runs.reduce((sum, run) => sum + run.result.ok, 0);
  const only = runs.length === 1 ? runs[0] : undefined;
  return {
    part,
    path: target.name,
    url: target.url,
    proxy: target.proxy ?? null,
    offeredRps,
    seconds: runs.reduce((sum, run) => sum + run.result.sent / offeredRps, 0),
    sent: runs.reduce((sum, run) => sum + run.result.sent, 0),
    ok,
    failed: runs.reduce((sum, run) => sum + run.result.failed, 0),
    failures,
    answeredRps: elapsedMs > 0 ? ok / (elapsedMs / 1000) : null,
    latencyMs: summarizeLatency(latencies),
    generatorLateMs: { p50: percentile(late, 0.5), p99: percentile(late, 0.99), max: late.length === 0 ? null : Math.max(...late) },
    maxInFlight: Math.max(0, ...runs.map((run) => run.result.maxInFlight)),
    maxConnections: Math.max(0, ...runs.map((run) => run.result.maxConnections)),
    stableMaxInFlight: runs.some((run) => run.stableMaxInFlight !== null) ? Math.max(0, ...runs.map((run) => run.stableMaxInFlight ?? 0)) : null,
    firstChunkMs: firstChunks.length === 0 ? null : summarizeLatency(firstChunks),
    chunkGapsMs: gaps.length === 0 ? null : summarizeLatency(gaps),
    cpu: cpuFigures(runs, target.proxy, ok),
    blocks: runs.map((run) => {
      const summary = summarizeLatency(run.result.latenciesMs);
      return { n: summary.n, p50: summary.p50, p99: summary.p99, startedAt: new Date(run.result.startedAtEpochMs).toISOString() };
    }),
    perSecond: only === undefined ? [] : perSecond(only.result),
  };
}

function cpuFigures(runs: readonly LoadRun[], proxy: string | undefined, answered: number): CpuFigures {
  const wallMs = runs.reduce((sum, run) => sum + run.cpu.wallMs, 0);
  const sum = (pick: (cpu: CpuUse) => Record<string, number>) => {
    const totals: Record<string, number> = {};
    for (const run of runs) for (const [name, ms] of Object.entries(pick(run.cpu))) totals[name] = (totals[name] ?? 0) + ms;
    return totals;
  };
  const asPercent = (totals: Record<string, number>) => Object.fromEntries(Object.entries(totals).map(([name, ms]) => [name, wallMs > 0 ? (ms / wallMs) * 100 : 0]));
  const cpuMs = sum((cpu) => cpu.cpuMs);
  const busy = runs.filter((run) => run.cpu.machineBusy !== null);
  const proxyMs = proxy === undefined ? undefined : cpuMs[proxy];
  return {
    percent: asPercent(cpuMs),
    waitPercent: asPercent(sum((cpu) => cpu.waitMs)),
    machineBusyPct: busy.length === 0 ? null : (busy.reduce((total, run) => total + (run.cpu.machineBusy ?? 0) * run.cpu.wallMs, 0) / busy.reduce((total, run) => total + run.cpu.wallMs, 0)) * 100,
    proxyMsPerRequest: proxyMs === undefined || answered === 0 ? null : proxyMs / answered,
  };
}

function perSecond(result: OpenLoopResult): PathFigures['perSecond'] {
  const seconds = new Map<number, { latencies: number[]; failed: number }>();
  const bucket = (epochMs: number) => {
    const second = Math.max(0, Math.floor((epochMs - result.startedAtEpochMs) / 1000));
    let entry = seconds.get(second);
    if (entry === undefined) {
      entry = { latencies: [], failed: 0 };
      seconds.set(second, entry);
    }
    return entry;
  };
  result.sentAtEpochMs.forEach((at, index) => bucket(at).latencies.push(result.latenciesMs[index] ?? 0));
  // A failure is placed by when it ended, a success by when it was sent: close enough per second.
  for (const at of result.failedAtEpochMs) bucket(at).failed++;
  return [...seconds.entries()]
    .sort(([a], [b]) => a - b)
    .map(([second, entry]) => {
      const summary = summarizeLatency(entry.latencies);
      return { second, sent: entry.latencies.length + entry.failed, ok: entry.latencies.length, failed: entry.failed, p50: summary.p50, p99: summary.p99, max: summary.max };
    });
}

function compare(reference: { figures: PathFigures; runs: readonly LoadRun[] }, other: { figures: PathFigures; runs: readonly LoadRun[] }): Comparison {
  const byIndex = new Map<number, number>();
  for (const run of reference.runs) run.result.indices.forEach((index, at) => byIndex.set(index, run.result.latenciesMs[at] ?? 0));
  const differences: number[] = [];
  for (const run of other.runs) {
    run.result.indices.forEach((index, at) => {
      const same = byIndex.get(index);
      if (same !== undefined) differences.push((run.result.latenciesMs[at] ?? 0) - same);
    });
  }
  const diff = (a: number | null | undefined, b: number | null | undefined) => (typeof a === 'number' && typeof b === 'number' ? a - b : null);
  const ref = reference.figures;
  const path = other.figures;
  return {
    path: path.path,
    reference: ref.path,
    addedP50Ms: diff(path.latencyMs.p50, ref.latencyMs.p50),
    addedP99Ms: diff(path.latencyMs.p99, ref.latencyMs.p99),
    p99ChangePct: pctAbove(path.latencyMs.p99, ref.latencyMs.p99),
    samePromptMedianMs: percentile(differences, 0.5),
    pairs: differences.length,
    roundsAddedP50Ms: path.blocks.map((block, round) => diff(block.p50, ref.blocks[round]?.p50)),
    roundsAddedP99Ms: path.blocks.map((block, round) => diff(block.p99, ref.blocks[round]?.p99)),
    gapAddedP50Ms: diff(path.chunkGapsMs?.p50, ref.chunkGapsMs?.p50),
    gapAddedP99Ms: diff(path.chunkGapsMs?.p99, ref.chunkGapsMs?.p99),
  };
}

/** Pools each target's runs and compares every other target with the first one. */
function caseFigures(part: Part, targets: readonly Target[], runs: Map<string, LoadRun[]>, rate: number): CaseFigures {
  const pooled = targets.map((target) => ({ figures: pathFigures(part, target, runs.get(target.name) ?? [], rate), runs: runs.get(target.name) ?? [] }));
  const [reference, ...others] = pooled;
  const comparisons = reference === undefined ? [] : others.map((other) => compare(reference, other));
  for (const comparison of comparisons) {
    log(`  ${part}: ${comparison.path} − ${comparison.reference}: p50 ${signed(comparison.addedP50Ms, 3)} ms, p99 ${signed(comparison.addedP99Ms, 3)} ms, same prompt median ${signed(comparison.samePromptMedianMs, 3)} ms${comparison.gapAddedP99Ms === null ? '' : `, chunk gap p99 ${signed(comparison.gapAddedP99Ms, 3)} ms`}`);
  }
  return { part, paths: pooled.map((entry) => entry.figures), comparisons };
}

function signed(value: number | null, digits: number): string {
  return value === null ? '–' : `${value >= 0 ? '+' : ''}${fmt(value, digits)}`;
}

/** How much higher `value` is than `reference`, in percent. */
function pctAbove(value: number | null, reference: number | null): number | null {
  return value === null || reference === null || reference === 0 ? null : (value / reference - 1) * 100;
}

/** The runs with only the requests sent at or after `epochMs` (failures: those that ended after it). */
function sentFrom(run: LoadRun, epochMs: number): LoadRun {
  const { result } = run;
  const keep = result.sentAtEpochMs.map((at) => at >= epochMs);
  const pick = <T>(values: readonly T[]) => values.filter((_, at) => keep[at] === true);
  const failedAt = result.failedAtEpochMs.filter((at) => at >= epochMs);
  const ok = keep.filter(Boolean).length;
  const startedAtEpochMs = Math.max(result.startedAtEpochMs, epochMs);
  return {
    cpu: run.cpu,
    stableMaxInFlight: run.stableMaxInFlight,
    result: {
      ...result,
      sent: ok + failedAt.length,
      ok,
      failed: failedAt.length,
      failures: failedAt.length === 0 ? {} : result.failures,
      indices: pick(result.indices),
      latenciesMs: pick(result.latenciesMs),
      sentAtEpochMs: pick(result.sentAtEpochMs),
      failedAtEpochMs: failedAt,
      startedAtEpochMs,
      elapsedMs: Math.max(0, result.lastEndAtEpochMs - startedAtEpochMs),
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The parts.

/** overhead, stream, long-calls, kafka-down and nginx: the stable model behind gateways and behind nginx (plain and mirroring). */
async function proxyParts(processes: Processes, context: Context, figures: Figures): Promise<void> {
  const { options } = context;
  const wanted = [Part.overhead, Part.stream, Part.longCalls, Part.kafkaDown, Part.nginx].filter((part) => options.parts.has(part));
  if (wanted.length === 0) return;
  if (options.parts.has(Part.nginx) || options.parts.has(Part.overhead) || options.parts.has(Part.stream)) {
    figures.nginxVersion = await nginxVersion(options.nginx);
    if (figures.nginxVersion === null) {
      figures.skipped.push({ part: Part.nginx, reason: `${options.nginx}: not found, so no nginx paths anywhere. ${NGINX_INSTALL_HINT}` });
      log(`nginx: ${options.nginx} not found; the nginx paths are left out. ${NGINX_INSTALL_HINT}`);
    } else {
      const dir = join(context.dir, 'nginx');
      processes.nginx = await NginxMirror.start({ nginx: options.nginx, dir, stableUrl: processes.stableUrl, mirrorUrl: await startSlowTarget(processes, context) });
      log(`nginx ${figures.nginxVersion} (1 worker) at ${processes.nginx.url}: ${PLAIN_PREFIX}/ proxies to the stable model, / also mirrors to the ${options.shadowMs} ms target; files in ${dir}`);
    }
  }
  const nginxPlain: Target | null = processes.nginx === undefined ? null : { name: 'nginx', url: `${processes.nginx.url}${PLAIN_PREFIX}`, proxy: Proc.nginx };
  if ([Part.overhead, Part.stream, Part.longCalls, Part.kafkaDown].some((part) => options.parts.has(part))) await gatewayCases(processes, context, figures, nginxPlain);
  else if (nginxPlain !== null) await warmUp(processes, context, [nginxPlain], 'nginx');
  if (options.parts.has(Part.nginx) && processes.nginx !== undefined && figures.nginxVersion !== null && !context.signal.aborted) {
    figures.loadAverage[Part.nginx] = os.loadavg();
    figures.nginx = await nginxMirror(processes, context, figures.nginxVersion, processes.nginx);
  }
  await processes.nginx?.stop();
  processes.nginx = undefined;
}

/** The cases with a gateway in front of the stable model: overhead, stream, long-calls, kafka-down (nginx as the control). */
async function gatewayCases(processes: Processes, context: Context, figures: Figures, nginx: Target | null): Promise<void> {
  const { options } = context;
  const profileDir = options.cpuProf ? join(context.dir, 'g1', 'profile') : undefined;
  processes.gateway = await startGateway(processes, context, 'g1', context.kafkaBrokers.join(','), profileDir);
  log(`gateway ${processes.gateway.url} (pid ${processes.gateway.pid ?? '?'}), log ${processes.gateway.logFile}`);
  if (options.parts.has(Part.kafkaDown)) {
    const broker = context.kafkaBrokers[0];
    if (context.kafkaBrokers.length !== 1 || broker === undefined) {
      figures.skipped.push({ part: Part.kafkaDown, reason: `needs a single-broker Kafka (KAFKA_BROKERS=${context.kafkaBrokers.join(',')}): the cut proxy rewrites one advertised address` });
    } else {
      processes.proxy = await startKafkaCutProxy(broker);
      processes.gatewayCut = await startGateway(processes, context, 'g3', processes.proxy.address);
      log(`gateway ${processes.gatewayCut.url} (pid ${processes.gatewayCut.pid ?? '?'}) reaches Kafka through the cut proxy ${processes.proxy.address}`);
    }
  }
  const direct: Target = { name: 'direct', url: processes.stableUrl };
  const gateway: Target = { name: 'gateway', url: processes.gateway.url, proxy: Proc.gateway };
  const cut: Target | null = processes.gatewayCut === undefined ? null : { name: 'gateway, Kafka cut', url: processes.gatewayCut.url, proxy: Proc.gatewayCut };
  const withNginx = nginx === null ? [direct, gateway] : [direct, gateway, nginx];
  await warmUp(processes, context, cut === null ? withNginx : [...withNginx, cut], 'proxies');
  await waitForPublishing(processes.gateway);
  if (processes.gatewayCut !== undefined) await waitForPublishing(processes.gatewayCut);

  if (options.parts.has(Part.overhead) && !context.signal.aborted) {
    figures.loadAverage[Part.overhead] = os.loadavg();
    log(`\noverhead: ${options.rate} req/s for ${options.seconds} s per path, paths taking turns (half the answers streamed)`);
    const runs = await alternate(processes, context, Part.overhead, withNginx, { seconds: options.seconds, stream: StreamMode.half, chunkTiming: false });
    figures.overhead = caseFigures(Part.overhead, withNginx, runs, options.rate);
  }
  if (options.parts.has(Part.stream) && !context.signal.aborted) {
    figures.loadAverage[Part.stream] = os.loadavg();
    log(`\nstream: ${options.rate} streamed answers/s for ${options.seconds} s per path, taking turns; arrival of every content chunk recorded`);
    const runs = await alternate(processes, context, Part.stream, withNginx, { seconds: options.seconds, stream: StreamMode.all, chunkTiming: true });
    figures.stream = caseFigures(Part.stream, withNginx, runs, options.rate);
  }
  if (options.parts.has(Part.longCalls) && !context.signal.aborted) {
    figures.loadAverage[Part.longCalls] = os.loadavg();
    log(`\nlong-calls: the stable model at its own pace (timeScale 1, ~0.8 s a call), ${options.rate} req/s for ${options.longSeconds} s per path`);
    await processes.stableSim?.call('setSimProfile', { patch: stablePatch(1) });
    try {
      const runs = await alternate(processes, context, Part.longCalls, [direct, gateway], { seconds: options.longSeconds, stream: StreamMode.half, chunkTiming: false });
      figures.longCalls = caseFigures(Part.longCalls, [direct, gateway], runs, options.rate);
    } finally {
      await processes.stableSim?.call('setSimProfile', { patch: stablePatch(options.stableScale) });
    }
  }
  if (cut !== null && processes.proxy !== undefined && processes.gatewayCut !== undefined && !context.signal.aborted) {
    figures.loadAverage[Part.kafkaDown] = os.loadavg();
    figures.kafkaDown = await kafkaDown(processes, context, { healthy: gateway, cut, proxy: processes.proxy, cutGateway: processes.gatewayCut });
  }
  await processes.stopServices();
  if (profileDir !== undefined) figures.gatewayProfile = await gatewayProfile(context, profileDir);
}

async function kafkaDown(processes: Processes, context: Context, input: { healthy: Target; cut: Target; proxy: KafkaCutProxy; cutGateway: CliService }): Promise<KafkaDownFigures> {
  const { options } = context;
  const rounds = Math.max(1, Math.round(options.seconds / options.blockSeconds));
  const cutAfterMs = ((options.seconds / rounds) * 1000) / 3;
  log(`\nkafka-down: ${options.rate} req/s for ${options.seconds} s per gateway, taking turns; the second gateway's Kafka connection is cut (${options.kafkaCut}) ${fmt(cutAfterMs / 1000, 1)} s into its first block`);
  let atCut: Promise<PublishCounters> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let cutBlockStart = 0;
  const runs = await alternate(processes, context, Part.kafkaDown, [input.healthy, input.cut], {
    seconds: options.seconds,
    stream: StreamMode.half,
    chunkTiming: false,
    onBlockStart: (target, round) => {
      if (target.name !== input.cut.name || round !== 0) return;
      cutBlockStart = Date.now();
      timer = setTimeout(() => {
        atCut = publishCounters(input.cutGateway);
        input.proxy.cut(options.kafkaCut);
        log(`  kafka-down: Kafka cut (${options.kafkaCut})`);
      }, cutAfterMs);
    },
  });
  clearTimeout(timer);
  const atEnd = await publishCounters(input.cutGateway);
  const cutAt = input.proxy.cutAt ?? Infinity;
  const cutRuns = runs.get(input.cut.name) ?? [];
  const healthyRuns = runs.get(input.healthy.name) ?? [];
  const before = cutRuns.flatMap((run) => run.result.latenciesMs.filter((_, at) => (run.result.sentAtEpochMs[at] ?? 0) < cutAt));
  const failedBefore = cutRuns.reduce((sum, run) => sum + run.result.failedAtEpochMs.filter((at) => at < cutAt).length, 0);
  const afterRuns = cutRuns.map((run) => sentFrom(run, cutAt));
  const pooled = caseFigures(Part.kafkaDown, [input.healthy, input.cut], new Map([[input.healthy.name, healthyRuns], [input.cut.name, afterRuns]]), options.rate);
  const stopBegan = performance.now();
  const exitCode = await input.cutGateway.stop();
  const shutdown = { exitCode, seconds: (performance.now() - stopBegan) / 1000 };
  processes.gatewayCut = undefined;
  log(`  kafka-down: published ${atEnd.sent ?? '?'} events, dropped ${atEnd.droppedBufferFull ?? '?'} (buffer full) + ${atEnd.droppedSendFailed ?? '?'} (send failed); SIGTERM with Kafka unreachable: exit code ${exitCode ?? 'none (killed)'} after ${fmt(shutdown.seconds, 1)} s`);
  return {
    ...pooled,
    mode: options.kafkaCut,
    cutAfterS: input.proxy.cutAt === null ? null : (input.proxy.cutAt - cutBlockStart) / 1000,
    beforeCut: { ...summarizeLatency(before), failed: failedBefore },
    publish: { atCut: atCut === undefined ? null : await atCut, atEnd },
    proxy: { rewrites: input.proxy.rewrites, connectionsAccepted: input.proxy.connectionsAccepted },
    shutdown,
  };
}

async function nginxMirror(processes: Processes, context: Context, version: string, nginx: NginxMirror): Promise<NginxMirrorFigures> {
  const { options, scope } = context;
  const target: Target = { name: 'nginx mirror', url: nginx.url, proxy: Proc.nginx };
  log(`\nnginx: ${options.rate} req/s for ${options.seconds} s through nginx with mirror to the ${options.shadowMs} ms target`);
  await processes.shadowSim?.call('resetSimStats', {});
  const run = await offer(processes, context, { url: target.url, seconds: options.seconds, firstIndex: 0, idPrefix: `${scope.id}-nginx-mirror`, stream: StreamMode.half, chunkTiming: false });
  const stats = (await processes.shadowSim?.call('simStats', {})) ?? emptyStats();
  const path = pathFigures(Part.nginx, target, [run], options.rate);
  // Mirrors still waiting when the users were served reach the target afterwards.
  await new Promise((resolve) => setTimeout(resolve, options.shadowMs + 500));
  const later = (await processes.shadowSim?.call('simStats', {})) ?? stats;
  const slow = slowTargetFigures(stats, run.result.elapsedMs / 1000, path.sent);
  log(`  nginx mirror: p50 ${fmt(path.latencyMs.p50, 2)} ms, p99 ${fmt(path.latencyMs.p99, 2)} ms, ${fmt(path.answeredRps, 0)} answers/s, ${path.failed} failed; the target took ${fmt(slow.callsPerSecond, 0)} calls/s`);
  return { part: Part.nginx, paths: [path], comparisons: [], version, target: slow, targetCallsAfterLoad: later.requestsTotal - stats.requestsTotal };
}

async function shadowBusy(processes: Processes, context: Context, figures: Figures): Promise<void> {
  const { options, scope } = context;
  figures.loadAverage[Part.shadowBusy] = os.loadavg();
  const shadowUrl = await startSlowTarget(processes, context);
  const shadowSim = processes.shadowSim;
  if (shadowSim === undefined) throw new Error('no slow target');
  await ensureTopics(context.kafka, Object.values(topicsFor(scope, 'g2')), PARTITIONS);
  const dir = join(context.dir, 'g2');
  await mkdir(dir, { recursive: true });
  const [gatewayPort, replayPort] = [await freePort(), await freePort()];
  const config = serviceConfig(context, { stage: 'g2', gatewayPort, replayPort, stableUrl: processes.stableUrl, shadowUrl });
  const env = { ...context.env, KAFKA_BROKERS: context.kafkaBrokers.join(',') };
  const replay = (processes.replay = await CliService.start({ service: 'replay', config, port: replayPort, env, dir }));
  const gateway = (processes.gateway = await CliService.start({ service: 'gateway', config, port: gatewayPort, env, dir }));
  log(`\nshadow-busy: gateway ${gateway.url}, replay ${replay.url} → ${options.shadowMs} ms candidate ${shadowUrl}, concurrency cap ${options.replayConcurrency}; logs in ${dir}`);
  const idle: Target = { name: 'gateway, shadow paused', url: gateway.url, proxy: Proc.gateway };
  const busy: Target = { name: 'gateway, shadow saturated', url: gateway.url, proxy: Proc.gateway };
  await warmUp(processes, context, [idle], 'g2');
  await waitForPublishing(gateway);
  // Saturated: the cap is reached, or all the calls the offered load can keep in flight are, or
  // the calls in flight stopped growing (a limit below the cap).
  const saturatedAt = Math.floor(0.9 * Math.min(options.replayConcurrency, (options.rate * options.shadowMs) / 1000));
  const targetStats = new Map<string, SimStats[]>([
    [idle.name, []],
    [busy.name, []],
  ]);
  const runs = await alternate(processes, context, Part.shadowBusy, [idle, busy], {
    seconds: options.seconds,
    blockSeconds: shadowBlockSeconds(options),
    stream: StreamMode.half,
    chunkTiming: false,
    beforeBlock: async (target) => {
      const pause = target.name === idle.name;
      await replayAdmin(replay, pause ? 'pause' : 'resume');
      let most = 0;
      let mostAt = performance.now();
      const what = pause ? 'the candidate to finish its calls after the pause' : `the candidate's calls in flight to reach ${saturatedAt} or stop growing after the resume`;
      await waitFor(
        async () => {
          const inFlight = (await shadowSim.call('simStats', {})).inFlight;
          if (pause) return inFlight === 0;
          if (inFlight > most) [most, mostAt] = [inFlight, performance.now()];
          return inFlight >= saturatedAt || (most > 0 && performance.now() - mostAt > 1_000);
        },
        { timeoutMs: options.shadowMs + 5_000, intervalMs: 100, what },
      ).catch((error: unknown) => log(`  shadow-busy: ${error instanceof Error ? error.message : String(error)}; measuring anyway`));
      await shadowSim.call('resetSimStats', {});
    },
    afterBlock: async (target) => {
      targetStats.get(target.name)?.push(await shadowSim.call('simStats', {}));
    },
  });
  const pooled = caseFigures(Part.shadowBusy, [idle, busy], runs, options.rate);
  const targetOf = (target: Target) => {
    const list = targetStats.get(target.name) ?? [];
    const targetRuns = runs.get(target.name) ?? [];
    const seconds = targetRuns.reduce((sum, run) => sum + run.result.elapsedMs / 1000, 0);
    const sent = targetRuns.reduce((sum, run) => sum + run.result.sent, 0);
    const merged: SimStats = { ...emptyStats(), requestsTotal: list.reduce((sum, stats) => sum + stats.requestsTotal, 0), maxInFlight: Math.max(0, ...list.map((stats) => stats.maxInFlight)), byStatus: mergeCounts(list.map((stats) => stats.byStatus)) };
    return slowTargetFigures(merged, seconds, sent);
  };
  const replayMetrics = await replay.metrics();
  figures.shadowBusy = {
    ...pooled,
    replayConcurrency: options.replayConcurrency,
    busyTarget: targetOf(busy),
    idleTarget: targetOf(idle),
    replay: { consumed: metricSum(replayMetrics, 'shadow_replay_consumed_total'), callsByResult: metricByLabel(replayMetrics, 'shadow_replay_candidate_calls_total', 'result') },
    publish: await publishCounters(gateway),
  };
  log(`  shadow-busy: while saturated the candidate took ${fmt(figures.shadowBusy.busyTarget.callsPerSecond, 0)} calls/s, at most ${figures.shadowBusy.busyTarget.maxInFlight} at once`);
  await processes.stopServices();
}

/** Switching the shadow path on or off takes about a call's time: blocks of at least two calls. */
function shadowBlockSeconds(options: Options): number {
  return Math.max(options.blockSeconds, (2 * options.shadowMs) / 1000);
}

async function replayAdmin(replay: CliService, action: 'pause' | 'resume'): Promise<void> {
  const response = await request(`${replay.url}/admin/${action}`, { method: 'POST', headersTimeout: 5_000, bodyTimeout: 5_000 });
  await response.body.dump();
  if (response.statusCode !== 200) throw new Error(`replay /admin/${action} answered HTTP ${response.statusCode}`);
}

function slowTargetFigures(stats: SimStats, seconds: number, offered: number): SlowTargetFigures {
  return {
    calls: stats.requestsTotal,
    callsPerSecond: seconds > 0 ? stats.requestsTotal / seconds : 0,
    shadowedPct: offered > 0 ? (stats.requestsTotal / offered) * 100 : 0,
    maxInFlight: stats.maxInFlight,
    byStatus: { ...stats.byStatus },
  };
}

function mergeCounts(list: ReadonlyArray<Readonly<Record<string, number>>>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const counts of list) for (const [key, value] of Object.entries(counts)) out[key] = (out[key] ?? 0) + value;
  return out;
}

function emptyStats(): SimStats {
  return { requestsTotal: 0, inFlight: 0, maxInFlight: 0, byStatus: {}, aborted: 0, faults: {}, completionTokens: 0, otherRequests: 0, arrivals: [], windowSeconds: 0 };
}

async function withRedis<T>(context: Context, use: (redis: ReturnType<typeof createRedis>) => Promise<T>): Promise<T> {
  const redis = createRedis(addressesFromEnv(context.env).redisUrl, `${context.scope.id}-bench`);
  try {
    return await use(redis);
  } finally {
    await redis.quit().catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------------------------
// Tables.

type Verdict = 'PASS' | 'MISS' | '–';

interface GoalRow {
  goal: string;
  measured: string;
  target: string;
  verdict: Verdict;
}

function verdict(ok: boolean | null): Verdict {
  return ok === null ? '–' : ok ? 'PASS' : 'MISS';
}

function comparisonOf(figures: CaseFigures | null, path: string): Comparison | undefined {
  return figures?.comparisons.find((comparison) => comparison.path === path);
}

function pathOf(figures: CaseFigures | null, path: string): PathFigures | undefined {
  return figures?.paths.find((entry) => entry.path === path);
}

function goalRows(figures: Figures): GoalRow[] {
  const rows: GoalRow[] = [];
  const gateway = comparisonOf(figures.overhead, 'gateway');
  const nginx = comparisonOf(figures.overhead, 'nginx');
  const control = nginx === undefined ? '' : `; nginx: ${signed(nginx.addedP50Ms, 3)} / ${signed(nginx.addedP99Ms, 3)} ms`;
  if (gateway !== undefined) {
    rows.push({ goal: 'added latency at the median (gateway p50 − direct p50)', measured: `${signed(gateway.addedP50Ms, 3)} ms (same prompt: ${signed(gateway.samePromptMedianMs, 3)} ms)${control}`, target: `≤ ${GOAL.addedP50Ms} ms`, verdict: verdict(gateway.addedP50Ms === null ? null : gateway.addedP50Ms <= GOAL.addedP50Ms) });
    rows.push({ goal: 'added latency at p99 (gateway p99 − direct p99)', measured: `${signed(gateway.addedP99Ms, 3)} ms`, target: `≤ ${GOAL.addedP99Ms} ms`, verdict: verdict(gateway.addedP99Ms === null ? null : gateway.addedP99Ms <= GOAL.addedP99Ms) });
  }
  const isolation = (goal: string, comparison: Comparison | undefined, path: PathFigures | undefined, extraFailed = 0) => {
    if (comparison === undefined || path === undefined) return;
    const failed = path.failed + extraFailed;
    rows.push({
      goal,
      measured: `p99 ${fmt(path.latencyMs.p99, 2)} ms vs ${fmt((path.latencyMs.p99 ?? 0) - (comparison.addedP99Ms ?? 0), 2)} ms (${comparison.p99ChangePct === null ? '–' : `${signed(comparison.p99ChangePct, 1)}%`}), ${failed} failed`,
      target: `≤ +${GOAL.isolationP99Pct}%, 0 failed`,
      verdict: verdict(comparison.p99ChangePct === null ? null : comparison.p99ChangePct <= GOAL.isolationP99Pct && failed === 0),
    });
  };
  const k = figures.kafkaDown;
  isolation(`Kafka unreachable (${k?.mode ?? 'refuse'}) vs a healthy gateway`, comparisonOf(k, 'gateway, Kafka cut'), pathOf(k, 'gateway, Kafka cut'), k?.beforeCut.failed ?? 0);
  const s = figures.shadowBusy;
  isolation('shadow path saturated vs paused (replay → 2 s candidate)', comparisonOf(s, 'gateway, shadow saturated'), pathOf(s, 'gateway, shadow saturated'));
  const stream = comparisonOf(figures.stream, 'gateway');
  const streamNginx = comparisonOf(figures.stream, 'nginx');
  if (stream !== undefined) {
    rows.push({
      goal: 'streaming: gap between content chunks at p99 (gateway − direct)',
      measured: `${signed(stream.gapAddedP99Ms, 3)} ms (p50 ${signed(stream.gapAddedP50Ms, 3)} ms)${streamNginx === undefined ? '' : `; nginx: ${signed(streamNginx.gapAddedP99Ms, 3)} ms`}`,
      target: `|Δ| ≤ ${GOAL.streamGapP99Ms} ms`,
      verdict: verdict(stream.gapAddedP99Ms === null ? null : Math.abs(stream.gapAddedP99Ms) <= GOAL.streamGapP99Ms),
    });
  }
  const mirror = pathOf(figures.nginx, 'nginx mirror');
  const saturated = pathOf(s, 'gateway, shadow saturated');
  if (mirror !== undefined) {
    rows.push({
      goal: 'nginx mirror → 2 s target vs gateway with replay → 2 s candidate saturated',
      measured: `nginx mirror p50 ${fmt(mirror.latencyMs.p50, 1)} / p99 ${fmt(mirror.latencyMs.p99, 1)} ms, ${fmt(mirror.answeredRps, 0)} answers/s; gateway ${saturated === undefined ? 'not run' : `p50 ${fmt(saturated.latencyMs.p50, 1)} / p99 ${fmt(saturated.latencyMs.p99, 1)} ms, ${fmt(saturated.answeredRps, 0)} answers/s`}`,
      target: 'report',
      verdict: '–',
    });
  }
  return rows;
}

function renderTables(figures: Figures, options: Options): string {
  const out: string[] = [];
  const cases = [figures.overhead, figures.stream, figures.longCalls, figures.kafkaDown, figures.shadowBusy, figures.nginx].filter((entry): entry is CaseFigures => entry !== null);
  const paths = cases.flatMap((entry) => entry.paths);
  out.push(
    `Live path at ${options.rate} req/s offered (open loop, from a separate process on loopback); latency per request, hand-over to the client pool → last body byte.`,
    `Stable model: sim profile "stable", TTFT fixed at ${STABLE_TTFT_MS} ms, timeScale ${options.stableScale} (long-calls: 1). Half the answers streamed (stream: all).`,
    '',
    renderTable<PathFigures>(
      [
        { header: 'case', value: (row) => row.part, align: 'left' },
        { header: 'path', value: (row) => row.path, align: 'left' },
        { header: 'requests', value: (row) => String(row.sent) },
        { header: 'answered/s', value: (row) => fmt(row.answeredRps, 0) },
        { header: 'p50 ms', value: (row) => fmt(row.latencyMs.p50, 2) },
        { header: 'p90 ms', value: (row) => fmt(row.latencyMs.p90, 2) },
        { header: 'p99 ms', value: (row) => fmt(row.latencyMs.p99, 2) },
        { header: 'max ms', value: (row) => fmt(row.latencyMs.max, 1) },
        { header: 'failed', value: (row) => String(row.failed) },
        { header: 'in flight', value: (row) => String(row.maxInFlight) },
        { header: 'model in flight', value: (row) => (row.stableMaxInFlight === null ? '–' : String(row.stableMaxInFlight)) },
      ],
      paths,
    ),
  );
  const comparisons = cases.flatMap((entry) => entry.comparisons.map((comparison) => ({ part: entry.part, comparison })));
  if (comparisons.length > 0) {
    type Row = (typeof comparisons)[number];
    out.push(
      '',
      'Each path against the first path of its case (same run, blocks taking turns, same prompts):',
      '',
      renderTable<Row>(
        [
          { header: 'case', value: (row) => row.part, align: 'left' },
          { header: 'path − reference', value: (row) => `${row.comparison.path} − ${row.comparison.reference}`, align: 'left' },
          { header: 'Δ p50 ms', value: (row) => signed(row.comparison.addedP50Ms, 3) },
          { header: 'Δ p99 ms', value: (row) => signed(row.comparison.addedP99Ms, 3) },
          { header: 'p99 change', value: (row) => (row.comparison.p99ChangePct === null ? '–' : `${signed(row.comparison.p99ChangePct, 1)}%`) },
          { header: 'same prompt Δ median', value: (row) => signed(row.comparison.samePromptMedianMs, 3) },
          { header: 'Δ p50 per round', value: (row) => row.comparison.roundsAddedP50Ms.map((value) => signed(value, 2)).join(' '), align: 'left' },
        ],
        comparisons,
      ),
    );
  }
  if (figures.stream !== null) {
    out.push(
      '',
      'Streaming (every answer streamed): gaps between successive content chunks as the client read them, and send → first content chunk:',
      '',
      renderTable<PathFigures>(
        [
          { header: 'path', value: (row) => row.path, align: 'left' },
          { header: 'streams', value: (row) => String(row.ok) },
          { header: 'gaps', value: (row) => String(row.chunkGapsMs?.n ?? 0) },
          { header: 'gap p50 ms', value: (row) => fmt(row.chunkGapsMs?.p50, 3) },
          { header: 'gap p90 ms', value: (row) => fmt(row.chunkGapsMs?.p90, 3) },
          { header: 'gap p99 ms', value: (row) => fmt(row.chunkGapsMs?.p99, 3) },
          { header: 'gap max ms', value: (row) => fmt(row.chunkGapsMs?.max, 1) },
          { header: 'first chunk p50', value: (row) => fmt(row.firstChunkMs?.p50, 2) },
          { header: 'first chunk p99', value: (row) => fmt(row.firstChunkMs?.p99, 2) },
          { header: 'failed', value: (row) => String(row.failed) },
        ],
        figures.stream.paths,
      ),
    );
  }
  const k = figures.kafkaDown;
  if (k !== null) {
    out.push(
      '',
      `Kafka unreachable (${k.mode}): cut ${fmt(k.cutAfterS, 1)} s into the second gateway's first block; its ${k.beforeCut.n} requests sent before the cut (p99 ${fmt(k.beforeCut.p99, 2)} ms, ${k.beforeCut.failed} failed) are left out of its row.`,
      `It published ${k.publish.atCut?.sent ?? '?'} events before the cut, ${k.publish.atEnd.sent ?? '?'} in all; dropped ${k.publish.atEnd.droppedBufferFull ?? '?'} (buffer full) and ${k.publish.atEnd.droppedSendFailed ?? '?'} (send failed), ${k.publish.atEnd.bufferDepth ?? '?'} still buffered. SIGTERM with Kafka unreachable: exit code ${k.shutdown.exitCode ?? 'none (killed)'} after ${fmt(k.shutdown.seconds, 1)} s.`,
    );
  }
  const slowRows: Array<{ label: string; path: PathFigures; target: SlowTargetFigures | null }> = [];
  const s = figures.shadowBusy;
  if (s !== null) {
    const paused = pathOf(s, 'gateway, shadow paused');
    const saturated = pathOf(s, 'gateway, shadow saturated');
    if (paused !== undefined) slowRows.push({ label: 'gateway, replay paused', path: paused, target: s.idleTarget });
    if (saturated !== undefined) slowRows.push({ label: `gateway, replay → ${options.shadowMs} ms candidate saturated (cap ${s.replayConcurrency})`, path: saturated, target: s.busyTarget });
  }
  const plain = pathOf(figures.overhead, 'nginx');
  if (plain !== undefined) slowRows.push({ label: 'nginx, no mirror (overhead case)', path: plain, target: null });
  const mirror = pathOf(figures.nginx, 'nginx mirror');
  if (mirror !== undefined && figures.nginx !== null) slowRows.push({ label: `nginx, mirror → ${options.shadowMs} ms target`, path: mirror, target: figures.nginx.target });
  if (slowRows.length > 0) {
    out.push(
      '',
      `Shadowing to a slow target (${options.shadowMs} ms a call) at the same offered load: the live path, and what reached the target while the load ran:`,
      '',
      renderTable<(typeof slowRows)[number]>(
        [
          { header: 'path', value: (row) => row.label, align: 'left' },
          { header: 'answered/s', value: (row) => fmt(row.path.answeredRps, 0) },
          { header: 'p50 ms', value: (row) => fmt(row.path.latencyMs.p50, 2) },
          { header: 'p99 ms', value: (row) => fmt(row.path.latencyMs.p99, 2) },
          { header: 'max ms', value: (row) => fmt(row.path.latencyMs.max, 1) },
          { header: 'failed', value: (row) => String(row.path.failed) },
          { header: 'shadow calls/s', value: (row) => (row.target === null ? '–' : fmt(row.target.callsPerSecond, 0)) },
          { header: 'shadowed %', value: (row) => (row.target === null ? '–' : fmt(row.target.shadowedPct, 0)) },
          { header: 'target max in flight', value: (row) => (row.target === null ? '–' : String(row.target.maxInFlight)) },
        ],
        slowRows,
      ),
    );
    if (s !== null) {
      const calls = Object.entries(s.replay.callsByResult).map(([result, count]) => `${count} ${result}`);
      const published = s.publish.sent === null ? null : s.publish.sent / 2;
      out.push(
        '',
        `The gateway published ${published ?? '?'} requests (${s.publish.droppedBufferFull ?? '?'} events dropped); replay read ${s.replay.consumed ?? '?'} of them and made ${calls.length === 0 ? 'no' : calls.join(', ')} candidate calls; the rest waited in Kafka.`,
      );
    }
    if (figures.nginx !== null) out.push(`nginx: ${figures.nginx.targetCallsAfterLoad} more mirror calls reached the target after the last user answer.`);
  }
  const cpuRows = paths.filter((path) => Object.keys(path.cpu.percent).length > 0);
  if (cpuRows.length > 0) {
    const names = [Proc.load, Proc.stable, Proc.replay, Proc.shadow, Proc.bench].filter((name) => cpuRows.some((row) => row.cpu.percent[name] !== undefined));
    out.push(
      '',
      `CPU while each path was loaded, % of one core (the machine has ${os.cpus().length}, shared with Kafka and other users). "proxy" is the process under test on`,
      'the path (gateway or nginx); "waited" is the share of time its event loop thread was ready to run but had no CPU; "machine" is every core, every user:',
      '',
      renderTable<PathFigures>(
        [
          { header: 'case', value: (row) => row.part, align: 'left' },
          { header: 'path', value: (row) => row.path, align: 'left' },
          { header: 'proxy CPU %', value: (row) => fmt(row.proxy === null ? null : row.cpu.percent[row.proxy], 0) },
          { header: 'proxy CPU ms/req', value: (row) => fmt(row.cpu.proxyMsPerRequest, 3) },
          { header: 'proxy waited %', value: (row) => fmt(row.proxy === null ? null : row.cpu.waitPercent[row.proxy], 0) },
          { header: 'machine busy %', value: (row) => fmt(row.cpu.machineBusyPct, 0) },
          ...names.map((name): Column<PathFigures> => ({ header: name, value: (row) => fmt(row.cpu.percent[name], 0) })),
          { header: 'generator late p99 ms', value: (row) => fmt(row.generatorLateMs.p99, 2) },
        ],
        cpuRows,
      ),
    );
  }
  out.push(
    '',
    'Goals (issue 3), measured in this run:',
    '',
    renderTable<GoalRow>(
      [
        { header: 'goal', value: (row) => row.goal, align: 'left' },
        { header: 'measured', value: (row) => row.measured, align: 'left' },
        { header: 'target', value: (row) => row.target, align: 'left' },
        { header: 'result', value: (row) => row.verdict, align: 'left' },
      ],
      goalRows(figures),
    ),
  );
  const profile = figures.gatewayProfile;
  if (profile !== null) {
    const { summary } = profile;
    out.push(
      '',
      `Where the first gateway's CPU went (--cpu-prof, its whole life; ${fmt(summary.busyMs / 1000, 1)} s busy of ${fmt(summary.sampledMs / 1000, 1)} s sampled), Node's internals charged to their caller; ${profile.file}:`,
      '',
      renderTable<TimeShare>(
        [
          { header: 'component', value: (row) => row.name, align: 'left' },
          { header: 'CPU s', value: (row) => fmt(row.ms / 1000, 2) },
          { header: '% of busy', value: (row) => fmt(summary.busyMs > 0 ? (row.ms / summary.busyMs) * 100 : null, 1) },
        ],
        summary.byCause.filter((row) => row.name !== 'idle').slice(0, 12),
      ),
      '',
      renderTable<CpuProfileSummary['topFunctions'][number]>(
        [
          { header: 'function (self time)', value: (row) => row.name, align: 'left' },
          { header: 'where', value: (row) => row.location, align: 'left' },
          { header: '% of busy', value: (row) => fmt(summary.busyMs > 0 ? (row.ms / summary.busyMs) * 100 : null, 1) },
        ],
        summary.topFunctions,
      ),
    );
  }
  for (const skipped of figures.skipped) out.push(`skipped ${skipped.part}: ${skipped.reason}`);
  for (const error of figures.errors) out.push(`error: ${error}`);
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------

async function main(argv: string[]): Promise<number> {
  const start = startBench(argv, { usage: USAGE, parse: parseOptions, finishes: 'the current block', log });
  if (typeof start === 'number') return start;
  const { options, addresses, signal } = start;
  const startedAt = new Date();
  const machine = machineInfo();
  const scope = benchScope('gateway');
  const dir = await mkdtemp(join(os.tmpdir(), `${scope.id}-`));
  const env = { KAFKA_BROKERS: addresses.kafkaBrokers.join(','), REDIS_URL: addresses.redisUrl, LOG_LEVEL: 'warn' };
  const kafka = createKafka({ brokers: addresses.kafkaBrokers, clientId: `${scope.id}-bench`, log: silentLogger() });
  const context: Context = { startedAt, options, scope, dir, kafka, kafkaBrokers: addresses.kafkaBrokers, env, signal: signal };
  log(`bench:gateway — ${machine.cpus} CPUs (${machine.cpuModel}), Node ${machine.node}, load average ${machine.loadAverage.join(' ')}`);
  log(`${options.rate} req/s offered, ${options.seconds} s per path; parts ${[...options.parts].join(', ')}; Kafka ${addresses.kafkaBrokers.join(',')}, Redis ${addresses.redisUrl}; run ${scope.id}, files in ${dir}`);
  log('the models are SIMULATED (@shadow-replay/sim), standing in for GPU servers; every component runs in its own process');

  const figures: Figures = { overhead: null, stream: null, longCalls: null, kafkaDown: null, nginx: null, shadowBusy: null, nginxVersion: null, gatewayProfile: null, skipped: [], loadAverage: {}, errors: [] };
  const processes = new Processes();
  let cleanup: CleanupReport | null = null;
  try {
    processes.stableSim = BenchWorker.start('stable-model');
    processes.load = BenchWorker.start('load-generator');
    processes.stableUrl = (await processes.stableSim.call('startSim', { profile: 'stable', overrides: stablePatch(options.stableScale), statsWindowSeconds: 60 })).url;
    log(`stable model ${processes.stableUrl} (pid ${processes.stableSim.pid ?? '?'}), load generator pid ${processes.load.pid ?? '?'}`);
    const steps: Array<[string, () => Promise<void>]> = [
      ['overhead, stream, long-calls, kafka-down, nginx', () => proxyParts(processes, context, figures)],
      [Part.shadowBusy, () => (options.parts.has(Part.shadowBusy) ? shadowBusy(processes, context, figures) : Promise.resolve())],
    ];
    for (const [name, step] of steps) {
      if (signal.aborted) break;
      try {
        await step();
      } catch (error) {
        const message = `${name}: ${error instanceof Error ? error.message : String(error)}`;
        figures.errors.push(message);
        log(`FAILED ${message}`);
        // What the failed step left running would skew the next one.
        await processes.stopServices();
        await processes.nginx?.stop();
        processes.nginx = undefined;
      }
    }
  } catch (error) {
    figures.errors.push(error instanceof Error ? error.message : String(error));
    log(`FAILED: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  } finally {
    await processes.close();
    cleanup = await withRedis(context, (redis) => cleanupScope(scope, { kafkaBrokers: addresses.kafkaBrokers, redis })).catch((error: unknown) => ({
      topicsDeleted: 0,
      groupsDeleted: 0,
      redisKeysDeleted: 0,
      problems: [error instanceof Error ? error.message : String(error)],
    }));
    log(`cleaned up ${cleanup.topicsDeleted} topics, ${cleanup.groupsDeleted} consumer groups, ${cleanup.redisKeysDeleted} Redis keys${cleanup.problems.length > 0 ? ` (problems: ${cleanup.problems.join('; ')})` : ''}`);
    // Logs and configurations stay when something failed, for the post-mortem.
    if (figures.errors.length === 0) await rm(dir, { recursive: true, force: true });
    else log(`service logs kept in ${dir}`);
  }

  process.stdout.write(`\n${renderTables(figures, options)}\n`);
  const path = await writeResults('gateway', startedAt, {
    benchmark: 'gateway',
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    note: 'Models are simulated (@shadow-replay/sim), standing in for GPU servers. Gateway, replay, models, load generator and nginx run as separate processes on one machine shared with Kafka, Redis and other users. Latency is per request from the hand-over to the client pool to the last body byte. Compare paths within a case: they took turns in blocks of the same run.',
    machine,
    parameters: { ...options, parts: [...options.parts], stableProfile: { profile: 'stable', ...stablePatch(options.stableScale) }, partitions: PARTITIONS, kafkaBrokers: addresses.kafkaBrokers, redisUrl: addresses.redisUrl, goals: GOAL },
    interrupted: signal.aborted,
    goals: goalRows(figures),
    ...figures,
    cleanup,
  });
  process.stdout.write(`\nresults: ${path}\n`);
  return signal.aborted ? 130 : figures.errors.length > 0 ? 1 : 0;
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  process.stderr.write(`bench:gateway failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
}
