import { EvaluationBackoff, Outcome, PENDING, PairJobSchema, describeIssues, evalQueuePrefix, evaluationKey, type EvaluationRecord, type PairJob } from '@shadow-replay/contracts';
import { EvaluationError, evaluatePair, type Prices } from '@shadow-replay/evaluation';
import {
  OutcomeStore,
  ServiceHttpServer,
  counter,
  createKafka,
  createPipelineProducer,
  createRedis,
  createRegistry,
  ensureTopics,
  once,
  runSteps,
  type Logger,
  type Service,
} from '@shadow-replay/platform';
import { Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import type { EvaluatorSettings } from './config.js';
import { JudgeClient, JudgeUnavailableError } from './judge-client.js';

export const EVALUATOR_VERSION = '0.1.0';

export interface EvaluatorOptions {
  settings: EvaluatorSettings;
  log: Logger;
}

/**
 * BullMQ worker: evaluates each pair, publishes its EvaluationRecord keyed by
 * experiment/request/arm (a re-evaluation replaces, never adds), then settles the outcome.
 */
export class EvaluatorService implements Service {
  readonly #settings: EvaluatorSettings;
  readonly #log: Logger;
  readonly #kafka;
  readonly #producer;
  readonly #redis;
  readonly #workerRedis;
  readonly #outcomes: OutcomeStore;
  readonly #http: ServiceHttpServer;
  readonly #metrics;
  #worker: Worker | undefined;
  readonly #judge: JudgeClient | undefined;
  #running = false;
  #settlingFailed: Promise<void> | undefined;
  readonly close: () => Promise<void>;

  constructor(options: EvaluatorOptions) {
    const { settings, log } = options;
    this.#settings = settings;
    this.#log = log;
    this.#kafka = createKafka({ brokers: settings.addresses.kafkaBrokers, clientId: `${settings.kafka.clientId}-evaluator`, log });
    this.#producer = createPipelineProducer(this.#kafka);
    this.#redis = createRedis(settings.addresses.redisUrl, 'shadow-evaluator');
    // A BullMQ worker blocks its connection while waiting for jobs, so it gets its own.
    this.#workerRedis = createRedis(settings.addresses.redisUrl, 'shadow-evaluator-worker');
    this.#outcomes = new OutcomeStore({ redis: this.#redis, keyPrefix: settings.redis.keyPrefix });
    const registry = createRegistry('evaluator');
    this.#metrics = {
      evaluated: counter(registry, 'shadow_evaluator_evaluated_total', 'Pairs evaluated and published', ['experiment', 'arm']),
      failed: counter(registry, 'shadow_evaluator_failed_total', 'Pairs that failed for good (counted eval_failed once), by reason code', ['experiment', 'arm', 'reason']),
      judgeRequests: counter(
        registry,
        'shadow_evaluator_judge_requests_total',
        'HTTP requests to the judge: ok, retried (a transient failure, called again) or failed (the call gave up)',
        ['experiment', 'outcome'],
      ),
    };
    const judge = settings.experiment?.judge;
    const experimentId = settings.experiment?.id;
    this.#judge =
      judge === undefined || experimentId === undefined
        ? undefined
        : new JudgeClient({
            config: judge,
            apiKey: settings.judgeApiKey,
            redis: this.#redis,
            keyPrefix: settings.redis.keyPrefix,
            experimentId,
            onAttempt: (outcome) => this.#metrics.judgeRequests.inc({ experiment: experimentId, outcome }),
          });
    this.#http = new ServiceHttpServer({ host: settings.evaluator.listen.host, port: settings.evaluator.listen.port, log, registry, ready: () => this.#running });
    this.close = once(() =>
      runSteps(this.#log, [
        ['worker', () => this.#worker?.close()],
        ['failed-jobs', () => this.#settlingFailed],
        ['producer', () => this.#producer.disconnect()],
        ['http', () => this.#http.close()],
        ['redis', () => this.#redis.quit()],
        ['worker-redis', () => this.#workerRedis.quit()],
        ['judge', () => this.#judge?.close()],
      ]),
    );
  }

  get ready(): boolean {
    return this.#running;
  }

  async start(): Promise<void> {
    await this.#http.start();
    if (this.#settings.kafka.createTopics) {
      await ensureTopics(this.#kafka, [this.#settings.kafka.topics.evaluations], this.#settings.kafka.partitions);
    }
    await this.#producer.connect();
    this.#worker = new Worker(this.#settings.redis.evalQueue, (job: Job) => this.#process(job), {
      connection: this.#workerRedis,
      prefix: evalQueuePrefix(this.#settings.redis.keyPrefix),
      concurrency: this.#settings.evaluator.concurrency,
      // A worker killed mid-evaluation stalls its job; a pair must survive as many kills as it has
      // attempts. #process fails a job that stalled more often than that itself, after counting
      // it; BullMQ's own limit, one higher, is only the backstop.
      maxStalledCount: this.#settings.evaluator.attempts + 1,
      // Jobs the join stamps with PAIR_JOB_BACKOFF ask this for every wait between runs.
      settings: { backoffStrategy: (attemptsMade, _type, error) => evaluationBackoffMs(attemptsMade, this.#settings.evaluator.backoff, error) },
      autorun: false,
    });
    this.#worker.on('failed', (job, error) => {
      if (job !== undefined) void this.#onFailed(job, error);
    });
    this.#worker.on('error', (error) => this.#log.warn({ err: error }, 'worker error'));
    void this.#worker.run();
    await this.#worker.waitUntilReady();
    this.#running = true;
    this.#settlingFailed = this.#settleFailedJobs().catch((error: unknown) => this.#log.warn({ err: error }, 'could not check failed jobs for uncounted failures'));
    this.#log.info({ queue: this.#settings.redis.evalQueue, concurrency: this.#settings.evaluator.concurrency }, 'evaluator started');
  }

  async #process(job: Job): Promise<void> {
    try {
      await this.#evaluateJob(job);
    } catch (error) {
      // Counted before BullMQ moves the job to failed: a worker that dies in between leaves a
      // stalled job, whose next run finds eval_failed recorded and fails it without evaluating.
      const failure = error instanceof Error ? error : new Error(String(error));
      if (!isFinalFailure(job, failure, 1, this.#settings.evaluator.attempts)) throw failure;
      await this.#settleFailed(job, failure);
      // A job stamped with more attempts than this evaluator's evaluator.attempts must not run again.
      throw isFinalFailure(job, failure, 1) ? failure : new UnrecoverableError(failure.message);
    }
  }

  async #evaluateJob(job: Job): Promise<void> {
    const ids = pairIds(job.data);
    if (ids !== undefined) {
      const state = await this.#outcomes.state(ids.experimentId, ids.arm, ids.requestId);
      // Settled by an earlier run that died before BullMQ recorded the end of the job.
      if (state === Outcome.evaluated) return;
      if (state === Outcome.evalFailed) throw new UnrecoverableError('eval_failed: already recorded for this pair by an earlier run');
    }
    if (job.stalledCounter > this.#settings.evaluator.attempts) {
      throw new UnrecoverableError(`stalled: the pair stopped ${job.stalledCounter} workers mid-evaluation, more than evaluator.attempts (${this.#settings.evaluator.attempts})`);
    }
    const parsed = PairJobSchema.safeParse(job.data);
    // A job that cannot be read will not be readable on the next attempt either.
    if (!parsed.success) throw new UnrecoverableError(`schema_invalid: ${describeIssues(parsed.error.issues)}`);
    const pair = parsed.data;
    const record = this.#evaluate(pair);
    if (this.#judge !== undefined && pair.experimentId === this.#settings.experiment?.id && pair.stable.outcome === 'ok' && pair.candidate.outcome === 'ok') {
      // A judge still unreachable after its retries fails this run (JudgeUnavailableError);
      // evaluator.attempts decides whether the pair runs again or ends eval_failed.
      record.judge = { ...(await this.#judge.judge(pair)) };
      record.provenance.judgePromptHash = this.#judge.promptHash;
    }
    await this.#producer.send({
      topic: this.#settings.kafka.topics.evaluations,
      acks: -1,
      messages: [{ key: evaluationKey(pair.experimentId, pair.requestId, pair.arm), value: JSON.stringify(record) }],
    });
    await this.#outcomes.settle(pair.experimentId, pair.arm, pair.requestId, Outcome.evaluated);
    this.#metrics.evaluated.inc({ experiment: pair.experimentId, arm: pair.arm });
  }

  /**
   * BullMQ's `failed` event. The processor already counted its own final failures; this covers
   * the ones BullMQ decides without running it (a job that stalled past the backstop limit).
   * Settling is idempotent, so an event delivered twice counts once.
   */
  async #onFailed(job: Job, error: Error): Promise<void> {
    const final = isFinalFailure(job, error, 0);
    this.#log.warn({ jobId: job.id, attemptsMade: job.attemptsMade, final, err: error }, 'evaluation failed');
    if (!final) return;
    try {
      await this.#settleFailed(job, error);
    } catch (settleError) {
      this.#log.error({ jobId: job.id, err: settleError }, 'could not record eval_failed; the next evaluator start records it');
    }
  }

  /** Counts a pair as eval_failed; the metric moves only for the call that changed the state. */
  async #settleFailed(job: Job, error: Error): Promise<void> {
    const ids = pairIds(job.data);
    if (ids === undefined) return;
    const before = await this.#outcomes.settle(ids.experimentId, ids.arm, ids.requestId, Outcome.evalFailed);
    if (before === '' || before === PENDING) this.#metrics.failed.inc({ experiment: ids.experimentId, arm: ids.arm, reason: failureCode(error.message) });
  }

  /**
   * A worker that died after BullMQ failed a job and before the failure was counted leaves the
   * request pending. Every start settles the jobs in the failed set (kept 7 days; few, since
   * only poison fails) whose request is still pending.
   */
  async #settleFailedJobs(): Promise<void> {
    const queue = new Queue(this.#settings.redis.evalQueue, { connection: this.#redis, prefix: evalQueuePrefix(this.#settings.redis.keyPrefix) });
    const page = 200;
    let recovered = 0;
    try {
      for (let start = 0; ; start += page) {
        const jobs = await queue.getFailed(start, start + page - 1);
        for (const job of jobs) {
          const ids = job === undefined ? undefined : pairIds(job.data);
          if (job === undefined || ids === undefined) continue;
          if ((await this.#outcomes.state(ids.experimentId, ids.arm, ids.requestId)) !== PENDING) continue;
          await this.#settleFailed(job, new Error(job.failedReason));
          recovered++;
        }
        if (jobs.length < page) break;
      }
    } finally {
      await queue.close();
    }
    if (recovered > 0) this.#log.warn({ recovered }, 'counted failed pairs an earlier evaluator did not');
  }

  #evaluate(pair: PairJob): EvaluationRecord {
    try {
      return evaluatePair({
        experimentId: pair.experimentId,
        requestId: pair.requestId,
        arm: pair.arm,
        stable: pair.stable,
        candidate: pair.candidate,
        sources: pair.sources,
        prices: this.#prices(pair),
        ...this.#tenantHeader(pair),
        evaluatorVersion: EVALUATOR_VERSION,
        now: Date.now(),
      });
    } catch (error) {
      // A pair that does not evaluate now will not evaluate on the next attempt either.
      if (error instanceof EvaluationError && !error.retryable) throw new UnrecoverableError(`${error.code}: ${error.message}`);
      throw error;
    }
  }

  /** The experiment's tenant header; pairs of other experiments use the default. */
  #tenantHeader(pair: PairJob): { tenantHeader?: string } {
    const experiment = this.#settings.experiment;
    const header = experiment?.id === pair.experimentId ? experiment.slices.tenantHeader : undefined;
    return header === undefined ? {} : { tenantHeader: header };
  }

  #prices(pair: PairJob): { stable?: Prices; candidate?: Prices } {
    const experiment = this.#settings.experiment;
    if (experiment === undefined || experiment.id !== pair.experimentId) return {};
    const candidate = experiment.candidates.find((entry) => entry.name === pair.arm)?.prices;
    return { ...(experiment.stablePrices ? { stable: experiment.stablePrices } : {}), ...(candidate ? { candidate } : {}) };
  }
}

/** The pair a job's data names, read without trusting the rest of it. */
function pairIds(data: unknown): { experimentId: string; requestId: string; arm: string } | undefined {
  const { experimentId, requestId, arm } = (data ?? {}) as Partial<PairJob>;
  if (typeof experimentId !== 'string' || typeof requestId !== 'string' || typeof arm !== 'string') return undefined;
  return { experimentId, requestId, arm };
}

/**
 * Whether BullMQ fails this job for good, as its own retry rule decides: unrecoverable, or no
 * attempt left. `pending` is 1 inside the processor (the attempt under way is not counted yet)
 * and 0 in the `failed` event.
 */
function isFinalFailure(job: Job, error: Error, pending: 0 | 1, attempts = Number.POSITIVE_INFINITY): boolean {
  return error instanceof UnrecoverableError || error.name === 'UnrecoverableError' || job.attemptsMade + pending >= Math.min(job.opts.attempts ?? 1, attempts);
}

/**
 * The wait before run `attemptsMade + 1` of a pair: `evaluator.backoff` (exponential or fixed,
 * with its jitter), and never less than a judge's Retry-After, which the failed run carried on
 * its {@link JudgeUnavailableError}.
 */
export function evaluationBackoffMs(attemptsMade: number, backoff: EvaluatorSettings['evaluator']['backoff'], error?: Error, random = Math.random): number {
  const full = backoff.type === EvaluationBackoff.fixed ? backoff.delayMs : backoff.delayMs * 2 ** Math.max(0, attemptsMade - 1);
  const wait = Math.round(full * (1 - backoff.jitter * random()));
  const retryAfter = error instanceof JudgeUnavailableError ? (error.retryAfterMs ?? 0) : 0;
  return Math.max(wait, retryAfter);
}

/** The code a failure reason starts with (`schema_invalid`, `EVAL_PAIR_MISMATCH`, `stalled`), for the metric. */
function failureCode(message: string): string {
  if (message.startsWith('job stalled')) return 'stalled';
  return /^([A-Za-z][A-Za-z0-9_]*):/.exec(message)?.[1] ?? 'error';
}
