import { Outcome, PairJobSchema, describeIssues, evaluationKey, type EvaluationRecord, type PairJob } from '@shadow-replay/contracts';
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
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import type { EvaluatorSettings } from './config.js';
import { JudgeClient } from './judge-client.js';

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
    const judge = settings.experiment?.judge;
    this.#judge =
      judge === undefined || settings.experiment === undefined
        ? undefined
        : new JudgeClient({ config: judge, apiKey: settings.judgeApiKey, redis: this.#redis, keyPrefix: settings.redis.keyPrefix, experimentId: settings.experiment.id });
    const registry = createRegistry('evaluator');
    this.#metrics = {
      evaluated: counter(registry, 'shadow_evaluator_evaluated_total', 'Pairs evaluated and published', ['experiment', 'arm']),
      failed: counter(registry, 'shadow_evaluator_failed_total', 'Pairs that failed every attempt', ['experiment', 'arm']),
    };
    this.#http = new ServiceHttpServer({ host: settings.evaluator.listen.host, port: settings.evaluator.listen.port, log, registry, ready: () => this.#running });
    this.close = once(() =>
      runSteps(this.#log, [
        ['worker', () => this.#worker?.close()],
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
      prefix: `${this.#settings.redis.keyPrefix}:bull`,
      concurrency: this.#settings.evaluator.concurrency,
      // A worker killed mid-evaluation stalls its job; a pair must survive as many kills as it has attempts.
      maxStalledCount: this.#settings.evaluator.attempts,
      autorun: false,
    });
    this.#worker.on('failed', (job, error) => {
      if (job !== undefined) void this.#onFailed(job, error);
    });
    this.#worker.on('error', (error) => this.#log.warn({ err: error }, 'worker error'));
    void this.#worker.run();
    await this.#worker.waitUntilReady();
    this.#running = true;
    this.#log.info({ queue: this.#settings.redis.evalQueue, concurrency: this.#settings.evaluator.concurrency }, 'evaluator started');
  }

  async #process(job: Job): Promise<void> {
    const parsed = PairJobSchema.safeParse(job.data);
    // A job that cannot be read will not be readable on the next attempt either.
    if (!parsed.success) throw new UnrecoverableError(`schema_invalid: ${describeIssues(parsed.error.issues)}`);
    const pair = parsed.data;
    const record = this.#evaluate(pair);
    if (this.#judge !== undefined && pair.experimentId === this.#settings.experiment?.id && pair.stable.outcome === 'ok' && pair.candidate.outcome === 'ok') {
      // A judge still unreachable on the last attempt gives verdict `error`; the pair's other figures are kept.
      const lastAttempt = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      record.judge = { ...(await this.#judge.judge(pair, lastAttempt)) };
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

  async #onFailed(job: Job, error: Error): Promise<void> {
    const attempts = job.opts.attempts ?? 1;
    const final = error instanceof UnrecoverableError || error.name === 'UnrecoverableError' || job.attemptsMade >= attempts;
    this.#log.warn({ jobId: job.id, attemptsMade: job.attemptsMade, final, err: error }, 'evaluation failed');
    if (!final) return;
    const data = job.data as Partial<PairJob>;
    if (typeof data.experimentId !== 'string' || typeof data.arm !== 'string' || typeof data.requestId !== 'string') return;
    try {
      await this.#outcomes.settle(data.experimentId, data.arm, data.requestId, Outcome.evalFailed);
      this.#metrics.failed.inc({ experiment: data.experimentId, arm: data.arm });
    } catch (settleError) {
      this.#log.error({ jobId: job.id, err: settleError }, 'could not record eval_failed');
    }
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
        evaluatorVersion: EVALUATOR_VERSION,
        now: Date.now(),
      });
    } catch (error) {
      // A pair that does not evaluate now will not evaluate on the next attempt either.
      if (error instanceof EvaluationError && !error.retryable) throw new UnrecoverableError(`${error.code}: ${error.message}`);
      throw error;
    }
  }

  #prices(pair: PairJob): { stable?: Prices; candidate?: Prices } {
    const experiment = this.#settings.experiment;
    if (experiment === undefined || experiment.id !== pair.experimentId) return {};
    const candidate = experiment.candidates.find((entry) => entry.name === pair.arm)?.prices;
    return { ...(experiment.stablePrices ? { stable: experiment.stablePrices } : {}), ...(candidate ? { candidate } : {}) };
  }
}
