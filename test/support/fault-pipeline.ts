/**
 * The whole pipeline as four separate OS processes (gateway, replay, join, evaluator) on one
 * YAML file, simulated stable and candidate models in the test process, and the checks of
 * DESIGN §3 that every fault case ends with: each request id evaluated exactly once or
 * accounted in exactly one other outcome, conservation balanced, every process alive and
 * exiting 0 on SIGTERM.
 */
import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { EvaluationRecordSchema, OUTCOMES, PENDING, RequestEventSchema, decodeEvent, evalQueuePrefix, evaluationKey, type Outcome } from '@shadow-replay/contracts';
import { buildExperimentReport, sendTraffic, type TrafficResult } from '@shadow-replay/cli';
import { OutcomeStore, createRedis, ensureTopics, silentLogger, waitFor, type OutcomeCounts } from '@shadow-replay/platform';
import { createSimServer, mulberry32, type SimProfilePatch, type SimServer } from '@shadow-replay/sim';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { stringify } from 'yaml';
import { testScope, type TestScope } from './harness.js';
import { ServiceName, ServiceProcess, freePort, httpGet } from './service-process.js';

export const ARM = 'cand';

/** Requests per case: `FAULT_REQUESTS`, 5000 by default (issue 5). */
export function faultRequests(): number {
  const raw = process.env.FAULT_REQUESTS;
  if (raw === undefined || raw === '') return 5_000;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 10) throw new Error(`FAULT_REQUESTS must be a whole number ≥ 10 (got "${raw}")`);
  return value;
}

/**
 * The seed of a case's random moments: `FAULT_SEED` to reproduce a run, else a fresh one.
 * Printed by every case.
 */
export function faultSeed(): number {
  const raw = process.env.FAULT_SEED;
  if (raw !== undefined && raw !== '') {
    const value = Number(raw);
    if (!Number.isInteger(value) || value < 0) throw new Error(`FAULT_SEED must be a non-negative whole number (got "${raw}")`);
    return value;
  }
  return Math.floor(Math.random() * 2 ** 31);
}

/** `count` distinct sorted thresholds in [lo·total, hi·total], drawn from the seed. */
export function drawPoints(seed: number, count: number, total: number, lo = 0.05, hi = 0.95): number[] {
  const random = mulberry32(seed);
  const points = new Set<number>();
  for (let guard = 0; points.size < count && guard < 1_000; guard++) {
    points.add(Math.max(1, Math.round(total * (lo + (hi - lo) * random()))));
  }
  return [...points].sort((a, b) => a - b);
}

export interface FaultPipelineOptions {
  stable?: { profile?: string; overrides?: SimProfilePatch };
  candidate?: { profile?: string; overrides?: SimProfilePatch };
  /** Extra candidate settings (timeouts, rate). */
  candidateConfig?: Record<string, unknown>;
  /** Puts something (a fault-injecting proxy) between replay and the candidate model. */
  wrapCandidate?: (modelUrl: string) => Promise<{ url: string; close(): Promise<void> }>;
  /**
   * A Redis of the case's own for everything of the pipeline (join state, outcomes, BullMQ,
   * limiters) and for the case's observations, instead of the shared one.
   */
  redisUrl?: string;
}

export interface GatewayPublishCounts {
  sent: number;
  dropped: Record<string, number>;
  droppedTotal: number;
  unpublishable: number;
  bufferDepth: number;
}

/** What a case observed, for its table row and its assertions. */
export interface CaseObservation {
  requests: number;
  userFailures: number;
  /** Distinct request ids on the request topic: what entered the experiment. */
  published: number;
  counts: OutcomeCounts;
  evaluationRecords: number;
  distinctEvaluationKeys: number;
  duplicateEvaluationRecords: number;
  balanced: boolean;
  conservationNotes: string[];
  reportEvaluated: number;
  /** Request ids whose state disagrees with the evaluation records, by kind, with examples. */
  mismatches: { evaluatedWithoutRecord: string[]; recordWithoutEvaluated: string[]; publishedWithoutState: string[]; stateWithoutPublished: string[] };
  kills: number;
  restarts: number;
  crashes: string[];
  gateway: GatewayPublishCounts;
  durationMs: number;
}

/** A running pipeline of four processes around two simulated models. */
export class FaultPipeline {
  readonly scope: TestScope;
  readonly experimentId: string;
  readonly services: Record<ServiceName, ServiceProcess>;
  readonly stableSim: SimServer;
  readonly candidateSim: SimServer;
  readonly outcomes: OutcomeStore;
  readonly logDir: string;
  readonly startedAt = Date.now();
  readonly #queue: Queue;
  #passed = false;

  private constructor(scope: TestScope, services: Record<ServiceName, ServiceProcess>, sims: [SimServer, SimServer], logDir: string) {
    this.scope = scope;
    this.experimentId = scope.config.experiment?.id ?? '';
    this.services = services;
    [this.stableSim, this.candidateSim] = sims;
    this.outcomes = new OutcomeStore({ redis: scope.redis, keyPrefix: scope.config.redis.keyPrefix });
    this.logDir = logDir;
    this.#queue = new Queue(scope.config.redis.evalQueue, { connection: scope.redis, prefix: evalQueuePrefix(scope.config.redis.keyPrefix) });
  }

  /** Starts the models, writes the configuration, creates the topics and starts the four processes. */
  static async start(t: TestContext, options: FaultPipelineOptions = {}): Promise<FaultPipeline> {
    // after() hooks run in the order they were registered: this one, registered before
    // testScope's, stops the processes and models before their topics and keys are deleted.
    const made: { pipeline?: FaultPipeline; redis?: Redis } = {};
    const started: ServiceProcess[] = [];
    const sims: Array<{ close(): Promise<void> }> = [];
    t.after(async () => {
      for (const service of started) service.destroy();
      await Promise.all(sims.map((sim) => sim.close()));
      const pipeline = made.pipeline;
      if (pipeline === undefined) return;
      await pipeline.#queue.close().catch(() => undefined);
      await made.redis?.quit().catch(() => undefined);
      if (pipeline.#passed) rmSync(pipeline.logDir, { recursive: true, force: true });
      else t.diagnostic(`service logs kept in ${pipeline.logDir}`);
    });
    const stableSim = createSimServer({ profile: options.stable?.profile ?? 'stable', overrides: options.stable?.overrides ?? { timeScale: 0.05 } });
    const candidateSim = createSimServer({ profile: options.candidate?.profile ?? 'candidate', overrides: options.candidate?.overrides ?? { timeScale: 0.05 } });
    sims.push(stableSim, candidateSim);
    const [stable, candidateModel] = await Promise.all([stableSim.start(), candidateSim.start()]);
    let candidateUrl = candidateModel.url;
    if (options.wrapCandidate !== undefined) {
      const wrapper = await options.wrapCandidate(candidateModel.url);
      sims.unshift(wrapper);
      candidateUrl = wrapper.url;
    }
    const ports = { gateway: await freePort(), replay: await freePort(), join: await freePort(), evaluator: await freePort() };
    const sharedScope = testScope(t, (id) => ({
      // The cases follow each request by the id they sent (`<scope>-r-<index>`), so the gateway adopts it.
      gateway: { listen: { port: ports.gateway }, stable: { name: 'stable', baseUrl: stable.url }, requestIds: 'client' },
      experiment: {
        id: `exp-${id}`,
        startFrom: 'earliest',
        candidates: [{ name: ARM, baseUrl: candidateUrl, rate: { concurrency: 16 }, ...options.candidateConfig }],
      },
      replay: { listen: { port: ports.replay } },
      join: { listen: { port: ports.join }, sweepIntervalMs: 200 },
      evaluator: { listen: { port: ports.evaluator } },
    }));
    let scope = sharedScope;
    if (options.redisUrl !== undefined) {
      made.redis = createRedis(options.redisUrl, `${sharedScope.id}-faults`);
      scope = { ...sharedScope, redis: made.redis, env: { ...sharedScope.env, REDIS_URL: options.redisUrl } };
    }
    const logDir = join(tmpdir(), 'shadow-replay-faults', scope.id);
    mkdirSync(logDir, { recursive: true });
    const configFile = join(logDir, 'config.yaml');
    writeFileSync(configFile, stringify(scope.config));
    // Created up front: four processes creating the same topics at once only race.
    await ensureTopics(scope.kafka, Object.values(scope.config.kafka.topics), scope.config.kafka.partitions);
    const env = { ...scope.env, LOG_LEVEL: process.env.FAULT_LOG_LEVEL ?? 'warn', KAFKAJS_NO_PARTITIONER_WARNING: '1' };
    const services = Object.fromEntries(
      Object.values(ServiceName).map((name) => [name, new ServiceProcess({ name, configFile, port: ports[name], env, logFile: join(logDir, `${name}.log`) })]),
    ) as Record<ServiceName, ServiceProcess>;
    started.push(...Object.values(services));
    const pipeline = new FaultPipeline(scope, services, [stableSim, candidateSim], logDir);
    made.pipeline = pipeline;
    await Promise.all(Object.values(services).map((service) => service.start()));
    return pipeline;
  }

  /** Marks the case as passed, so its logs are removed at cleanup. */
  passed(): void {
    this.#passed = true;
  }

  /** A line in the case's own log, next to the service logs. */
  note(line: string): void {
    appendFileSync(join(this.logDir, 'case.log'), `${new Date().toISOString()} ${line}\n`);
  }

  /** Each consumed request id of the candidate arm and its state (pending or its outcome). */
  states(): Promise<Record<string, string>> {
    return this.scope.redis.hgetall(`${this.scope.config.redis.keyPrefix}:outcomes:{${this.experimentId}}:${ARM}:state`);
  }

  counts(): Promise<OutcomeCounts> {
    return this.outcomes.counts(this.experimentId, ARM);
  }

  /** Pairs the join handed to BullMQ so far (jobs in any state). */
  async jobsAdded(): Promise<number> {
    const counts = await this.#queue.getJobCounts('waiting', 'active', 'completed', 'failed', 'delayed', 'prioritized', 'waiting-children', 'paused');
    return Object.values(counts).reduce((sum, value) => sum + value, 0);
  }

  traffic(count: number, label = 'r', onProgress?: (done: number) => void): Promise<TrafficResult> {
    const concurrency = Number(process.env.FAULT_CONCURRENCY ?? 16);
    return sendTraffic({ gatewayUrl: this.services.gateway.url, count, concurrency, runId: `${this.scope.id}-${label}`, ...(onProgress ? { onProgress } : {}) });
  }

  async gatewayCounts(): Promise<GatewayPublishCounts> {
    const { status, text } = await httpGet(`${this.services.gateway.url}/metrics`);
    if (status !== 200) throw new Error(`gateway /metrics answered ${status}`);
    const dropped: Record<string, number> = {};
    // Labels come in any order and include the registry's default `service` label.
    for (const match of text.matchAll(/^shadow_gateway_publish_dropped_total\{([^}]*)\} (\S+)$/gm)) {
      const reason = /reason="([^"]*)"/.exec(match[1] ?? '')?.[1] ?? '?';
      dropped[reason] = (dropped[reason] ?? 0) + Number(match[2]);
    }
    const sum = (name: string) => [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))].reduce((total, match) => total + Number(match[1]), 0);
    return { sent: sum('shadow_gateway_publish_sent_total'), dropped, droppedTotal: Object.values(dropped).reduce((a, b) => a + b, 0), unpublishable: sum('shadow_gateway_unpublishable_total'), bufferDepth: sum('shadow_gateway_buffer_depth') };
  }

  /** Waits until every event of `requests` answered requests was either sent or dropped by the gateway. */
  async waitGatewayFlushed(requests: number, timeoutMs = 120_000): Promise<GatewayPublishCounts> {
    let last: GatewayPublishCounts | undefined;
    try {
      await waitFor(
        async () => {
          last = await this.gatewayCounts();
          return last.sent + last.droppedTotal >= 2 * (requests - last.unpublishable);
        },
        { timeoutMs, intervalMs: 250, what: `the gateway to publish or drop the events of ${requests} requests` },
      );
    } catch (error) {
      throw new Error(`${error instanceof Error ? error.message : String(error)}; last gateway counters ${JSON.stringify(last)}; logs in ${this.logDir}`);
    }
    return last ?? (await this.gatewayCounts());
  }

  /** Distinct request ids on the request topic. */
  async publishedRequestIds(): Promise<Set<string>> {
    const ids = new Set<string>();
    for (const record of await this.scope.read(this.scope.config.kafka.topics.requests)) {
      const decoded = decodeEvent(RequestEventSchema, record.value);
      assert.ok(decoded.ok, `undecodable request event at ${record.partition}/${record.offset}`);
      ids.add(decoded.value.requestId);
    }
    return ids;
  }

  /** Polls the outcome counters until `consumed` is `expected` and nothing is pending. */
  async waitDrained(expected: number, timeoutMs: number): Promise<OutcomeCounts> {
    let last: OutcomeCounts | undefined;
    try {
      await waitFor(
        async () => {
          last = await this.counts();
          return last.consumed === expected && last[PENDING] === 0;
        },
        { timeoutMs, intervalMs: 500, what: `consumed === ${expected} and pending === 0` },
      );
    } catch (error) {
      throw new Error(`${error instanceof Error ? error.message : String(error)}; last counts ${JSON.stringify(last)}; logs in ${this.logDir}`);
    }
    return last ?? (await this.counts());
  }

  /** Reads the evaluation records, the per-request states and the report, and stops every process. */
  async observe(requests: number, userFailures: number, publishedIds: Set<string>): Promise<{ observation: CaseObservation; exitCodes: Record<ServiceName, number | null>; aliveAtEnd: Record<ServiceName, boolean> }> {
    const counts = await this.counts();
    const keys = new Map<string, number>();
    let records = 0;
    for (const record of await this.scope.read(this.scope.config.kafka.topics.evaluations)) {
      const decoded = decodeEvent(EvaluationRecordSchema, record.value);
      assert.ok(decoded.ok, `undecodable evaluation record at ${record.partition}/${record.offset}`);
      if (decoded.value.experimentId !== this.experimentId || decoded.value.arm !== ARM) continue;
      records++;
      keys.set(decoded.value.requestId, (keys.get(decoded.value.requestId) ?? 0) + 1);
      assert.equal(record.key?.toString(), evaluationKey(this.experimentId, decoded.value.requestId, ARM), 'evaluation records are keyed experiment/request/arm');
    }
    const states = await this.states();
    const stateIds = Object.keys(states);
    const evaluatedIds = stateIds.filter((id) => states[id] === 'evaluated');
    const sample = (ids: string[]) => ids.slice(0, 5);
    const report = await buildExperimentReport({
      experimentId: this.experimentId,
      topics: this.scope.config.kafka.topics,
      keyPrefix: this.scope.config.redis.keyPrefix,
      addresses: { kafkaBrokers: this.scope.env.KAFKA_BROKERS?.split(',') ?? [], redisUrl: this.scope.env.REDIS_URL ?? '', schemaRegistryUrl: undefined },
      log: silentLogger(),
    });
    const aliveAtEnd = Object.fromEntries(Object.values(this.services).map((service) => [service.name, service.alive])) as Record<ServiceName, boolean>;
    const crashes = Object.values(this.services).flatMap((service) => service.crashes.map((crash) => `${service.name} exited ${crash.code ?? crash.signal ?? '?'} on its own`));
    const gateway = await this.gatewayCounts();
    const exitCodes = {} as Record<ServiceName, number | null>;
    // Upstream first, like the single-process pipeline: the gateway stops taking traffic before the stages behind it drain.
    for (const name of [ServiceName.gateway, ServiceName.replay, ServiceName.join, ServiceName.evaluator]) exitCodes[name] = await this.services[name].stop();
    const services = Object.values(this.services);
    return {
      observation: {
        requests,
        userFailures,
        published: publishedIds.size,
        counts,
        evaluationRecords: records,
        distinctEvaluationKeys: keys.size,
        duplicateEvaluationRecords: records - keys.size,
        balanced: report.conservation.balanced,
        conservationNotes: report.conservation.notes,
        reportEvaluated: report.conservation.evaluatedRecords,
        mismatches: {
          evaluatedWithoutRecord: sample(evaluatedIds.filter((id) => !keys.has(id))),
          recordWithoutEvaluated: sample([...keys.keys()].filter((id) => states[id] !== 'evaluated')),
          publishedWithoutState: sample([...publishedIds].filter((id) => states[id] === undefined)),
          stateWithoutPublished: sample(stateIds.filter((id) => !publishedIds.has(id))),
        },
        kills: services.reduce((sum, service) => sum + service.kills, 0),
        restarts: services.reduce((sum, service) => sum + service.restarts, 0),
        crashes,
        gateway,
        durationMs: Date.now() - this.startedAt,
      },
      exitCodes,
      aliveAtEnd,
    };
  }
}

/** Drain deadline: `FAULT_DRAIN_TIMEOUT_MS`, else generous for the request count. */
export function drainTimeoutMs(requests: number): number {
  const raw = Number(process.env.FAULT_DRAIN_TIMEOUT_MS ?? '');
  return Number.isFinite(raw) && raw > 0 ? raw : 150_000 + requests * 40;
}

const OTHER_OUTCOMES = OUTCOMES.filter((outcome) => outcome !== 'evaluated' && outcome !== 'candidate_error' && outcome !== 'stable_missing');

/** The row of a case: printed as a table and appended to `FAULT_RESULTS_FILE` for the runner's summary. */
export function reportCase(t: TestContext, name: string, observation: CaseObservation, extra: Record<string, string | number> = {}): void {
  const { counts } = observation;
  const others = OTHER_OUTCOMES.filter((outcome) => counts[outcome] > 0).map((outcome) => `${outcome}=${counts[outcome]}`);
  const row: Record<string, string | number> = {
    case: name,
    requests: observation.requests,
    'user failures': observation.userFailures,
    published: observation.published,
    consumed: counts.consumed,
    evaluated: counts.evaluated,
    candidate_error: counts.candidate_error,
    stable_missing: counts.stable_missing,
    'other outcomes': others.length === 0 ? '0' : others.join(' '),
    pending: counts[PENDING],
    'distinct eval keys': observation.distinctEvaluationKeys,
    'eval records': observation.evaluationRecords,
    'duplicates on topic': observation.duplicateEvaluationRecords,
    balanced: observation.balanced ? 'yes' : 'NO',
    'kills/restarts': `${observation.kills}/${observation.restarts}`,
    'gateway dropped': observation.gateway.droppedTotal,
    crashes: observation.crashes.length,
    duration: `${(observation.durationMs / 1000).toFixed(1)} s`,
    ...extra,
  };
  for (const line of formatTable([row])) t.diagnostic(line);
  const file = process.env.FAULT_RESULTS_FILE;
  if (file !== undefined && file !== '') appendFileSync(file, `${JSON.stringify(row)}\n`);
}

/** A plain-text table of rows with the same keys. */
export function formatTable(rows: ReadonlyArray<Record<string, string | number>>): string[] {
  const first = rows[0];
  if (first === undefined) return [];
  const columns = Object.keys(first);
  const widths = columns.map((column) => Math.max(column.length, ...rows.map((row) => String(row[column] ?? '').length)));
  const line = (cells: string[]) => cells.map((cell, index) => cell.padEnd(widths[index] ?? 0)).join(' | ');
  return [line(columns), widths.map((width) => '-'.repeat(width)).join('-|-'), ...rows.map((row) => line(columns.map((column) => String(row[column] ?? ''))))];
}

/**
 * The guarantees every case checks (DESIGN §3, issue 5): each consumed request in exactly one
 * outcome, evaluated ones with exactly one distinct evaluation key (duplicates on the topic
 * are allowed because the report counts each key once), conservation balanced, no process
 * crash-looping, SIGTERM exits 0.
 */
export function assertGuarantees(
  result: { observation: CaseObservation; exitCodes: Record<ServiceName, number | null>; aliveAtEnd: Record<ServiceName, boolean> },
  expectedConsumed: number,
): void {
  const { observation, exitCodes, aliveAtEnd } = result;
  const { counts, mismatches } = observation;
  assert.equal(counts.consumed, expectedConsumed, 'consumed = distinct request ids that reached the request topic');
  assert.equal(counts[PENDING], 0, 'nothing left pending');
  const settled = OUTCOMES.reduce((sum, outcome: Outcome) => sum + counts[outcome], 0);
  assert.equal(settled, counts.consumed, 'consumed = Σ outcomes');
  assert.equal(observation.distinctEvaluationKeys, counts.evaluated, 'one distinct evaluation key per evaluated request');
  assert.deepEqual(mismatches.evaluatedWithoutRecord, [], 'every request counted evaluated has an evaluation record');
  assert.deepEqual(mismatches.recordWithoutEvaluated, [], 'no evaluation record for a request accounted in another outcome (or none)');
  assert.deepEqual(mismatches.publishedWithoutState, [], 'every request on the topic is accounted');
  assert.deepEqual(mismatches.stateWithoutPublished, [], 'no outcome for a request that never reached the topic');
  assert.equal(observation.reportEvaluated, counts.evaluated, 'the report counts each evaluation key once');
  assert.equal(observation.balanced, true, `conservation balanced: ${observation.conservationNotes.join('; ')}`);
  assert.deepEqual(aliveAtEnd, { gateway: true, replay: true, join: true, evaluator: true }, `every process alive at the end (crashes: ${observation.crashes.join('; ') || 'none'})`);
  assert.deepEqual(exitCodes, { gateway: 0, replay: 0, join: 0, evaluator: 0 }, 'every process drains and exits 0 on SIGTERM');
}

/**
 * The end every case shares: wait until the gateway published (or dropped) everything and the
 * experiment drained, print the case's row (also when it did not drain), then check the
 * guarantees. With `failure` (the fault could not be carried out, e.g. a stage never came back)
 * it prints what was reached without waiting for a drain and throws that failure.
 */
export async function finishCase(
  t: TestContext,
  pipeline: FaultPipeline,
  name: string,
  traffic: { requests: number; ok: number; failed: number },
  extra: () => Record<string, string | number> = () => ({}),
  failure?: Error,
): Promise<CaseObservation> {
  await pipeline.waitGatewayFlushed(traffic.ok);
  const published = await pipeline.publishedRequestIds();
  let error = failure;
  if (error === undefined) {
    try {
      await pipeline.waitDrained(published.size, drainTimeoutMs(traffic.requests));
    } catch (drainError) {
      error = drainError instanceof Error ? drainError : new Error(String(drainError));
    }
  }
  const result = await pipeline.observe(traffic.requests, traffic.failed, published);
  reportCase(t, error === undefined ? name : `${name} (FAILED)`, result.observation, extra());
  if (error !== undefined) throw error;
  assertGuarantees(result, published.size);
  return result.observation;
}
