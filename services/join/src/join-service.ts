import {
  Outcome,
  PairJobSchema,
  ResponseEventSchema,
  decodeEvent,
  pairJobId,
  type PairJob,
  type ResponseEvent,
} from '@shadow-replay/contracts';
import {
  DeadLetterPublisher,
  OutcomeStore,
  PipelineConsumer,
  ServiceHttpServer,
  counter,
  createKafka,
  createPipelineProducer,
  createRedis,
  createRegistry,
  ensureTopics,
  once,
  runSteps,
  type ConsumedRecord,
  type Logger,
  type Service,
} from '@shadow-replay/platform';
import { Queue } from 'bullmq';
import type { JoinSettings } from './config.js';
import { JoinState, type StoredSide } from './join-state.js';

/** Completed and failed jobs are kept this long so their ids keep deduplicating (DESIGN §3). */
export const JOB_RETENTION_SECONDS = 7 * 24 * 3600;

export interface JoinOptions {
  settings: JoinSettings;
  log: Logger;
}

/**
 * Pairs stable and candidate ResponseEvents by (experiment, request, arm) with state in
 * Redis and adds one BullMQ job per pair. Offsets are committed after the job is stored.
 */
export class JoinService implements Service {
  readonly #settings: JoinSettings;
  readonly #log: Logger;
  readonly #kafka;
  readonly #producer;
  readonly #redis;
  readonly #state: JoinState;
  readonly #outcomes: OutcomeStore;
  readonly #queue: Queue;
  readonly #consumer: PipelineConsumer;
  readonly #deadLetters: DeadLetterPublisher;
  readonly #http: ServiceHttpServer;
  readonly #metrics;
  #sweeper: NodeJS.Timeout | undefined;
  #sweeping: Promise<void> | undefined;
  readonly close: () => Promise<void>;

  constructor(options: JoinOptions) {
    const { settings, log } = options;
    this.#settings = settings;
    this.#log = log;
    this.#kafka = createKafka({ brokers: settings.addresses.kafkaBrokers, clientId: `${settings.kafka.clientId}-join`, log });
    this.#producer = createPipelineProducer(this.#kafka);
    this.#deadLetters = new DeadLetterPublisher({ producer: this.#producer, topic: settings.kafka.topics.deadLetter, stage: 'join', log });
    this.#redis = createRedis(settings.addresses.redisUrl, 'shadow-join');
    this.#state = new JoinState({ redis: this.#redis, keyPrefix: settings.redis.keyPrefix, windowMs: settings.windowMs });
    this.#outcomes = new OutcomeStore({ redis: this.#redis, keyPrefix: settings.redis.keyPrefix });
    this.#queue = new Queue(settings.redis.evalQueue, { connection: this.#redis, prefix: `${settings.redis.keyPrefix}:bull` });
    const registry = createRegistry('join');
    this.#metrics = {
      events: counter(registry, 'shadow_join_events_total', 'Response events read, by side', ['side']),
      pairs: counter(registry, 'shadow_join_pairs_total', 'Pairs handed to the evaluation queue'),
      expired: counter(registry, 'shadow_join_expired_total', 'Candidate answers whose stable side never came'),
      deadLetters: counter(registry, 'shadow_join_dead_letters_total', 'Undecodable response events'),
    };
    this.#consumer = new PipelineConsumer({
      kafka: this.#kafka,
      groupId: `${settings.kafka.clientId}-join`,
      topics: [settings.kafka.topics.stableResponses, settings.kafka.topics.candidateResponses],
      concurrency: 32,
      log,
      handle: (record) => this.#handle(record),
    });
    this.#http = new ServiceHttpServer({ host: settings.join.listen.host, port: settings.join.listen.port, log, registry, ready: () => this.#consumer.ready });
    this.close = once(() =>
      runSteps(this.#log, [
        ['sweeper', () => this.#stopSweeper()],
        ['consumer', () => this.#consumer.close()],
        ['producer', () => this.#producer.disconnect()],
        ['queue', () => this.#queue.close()],
        ['http', () => this.#http.close()],
        ['redis', () => this.#redis.quit()],
      ]),
    );
  }

  get ready(): boolean {
    return this.#consumer.ready;
  }

  async start(): Promise<void> {
    await this.#http.start();
    const topics = this.#settings.kafka.topics;
    if (this.#settings.kafka.createTopics) {
      await ensureTopics(this.#kafka, [topics.stableResponses, topics.candidateResponses, topics.deadLetter], this.#settings.kafka.partitions);
    }
    await this.#producer.connect();
    await this.#consumer.start();
    this.#sweeper = setInterval(() => {
      this.#sweeping ??= this.#sweep().finally(() => {
        this.#sweeping = undefined;
      });
    }, this.#settings.join.sweepIntervalMs);
    this.#log.info({ windowMs: this.#settings.windowMs }, 'join started');
  }

  async #handle(record: ConsumedRecord): Promise<void> {
    const decoded = decodeEvent(ResponseEventSchema, record.value);
    const isStable = record.topic === this.#settings.kafka.topics.stableResponses;
    if (!decoded.ok) {
      this.#metrics.deadLetters.inc();
      await this.#deadLetters.publish(record, decoded.reason);
      return;
    }
    const event = decoded.value;
    const side: StoredSide = { event: record.value?.toString('utf8') ?? '', topic: record.topic, partition: record.partition, offset: record.offset };
    this.#metrics.events.inc({ side: isStable ? 'stable' : 'candidate' });
    if (isStable) {
      for (const waiting of await this.#state.offerStable(event.requestId, side)) {
        await this.#handOff(event.requestId, waiting.experimentId, waiting.arm, side, waiting.side);
      }
      return;
    }
    if (event.experimentId === undefined) {
      await this.#deadLetters.publish(record, 'schema_invalid: experimentId: required on a candidate response');
      return;
    }
    // Failed candidate calls were counted as candidate_error by replay; there is nothing to pair.
    if (event.outcome !== 'ok') return;
    const offer = await this.#state.offerCandidate(event.requestId, event.experimentId, event.arm, side);
    if (offer.state === 'paired') await this.#handOff(event.requestId, event.experimentId, event.arm, offer.stable, side);
  }

  async #handOff(requestId: string, experimentId: string, arm: string, stableSide: StoredSide, candidateSide: StoredSide): Promise<void> {
    const stable = JSON.parse(stableSide.event) as ResponseEvent;
    const candidate = JSON.parse(candidateSide.event) as ResponseEvent;
    const job: PairJob = PairJobSchema.parse({
      schemaVersion: 1,
      experimentId,
      requestId,
      arm,
      request: candidate.request ?? null,
      stable,
      candidate,
      sources: {
        stable: { topic: stableSide.topic, partition: stableSide.partition, offset: stableSide.offset },
        candidate: { topic: candidateSide.topic, partition: candidateSide.partition, offset: candidateSide.offset },
      },
    });
    await this.#queue.add('pair', job, {
      jobId: pairJobId(experimentId, requestId, arm),
      attempts: 3,
      backoff: { type: 'exponential', delay: 500 },
      removeOnComplete: { age: JOB_RETENTION_SECONDS },
      removeOnFail: { age: JOB_RETENTION_SECONDS },
    });
    await this.#state.markDone(requestId, experimentId, arm);
    this.#metrics.pairs.inc();
  }

  async #sweep(): Promise<void> {
    try {
      for (const expired of await this.#state.expire()) {
        await this.#outcomes.settle(expired.experimentId, expired.arm, expired.requestId, Outcome.stableMissing);
        this.#metrics.expired.inc();
      }
    } catch (error) {
      this.#log.warn({ err: error }, 'join sweep failed; retrying next interval');
    }
  }

  async #stopSweeper(): Promise<void> {
    if (this.#sweeper !== undefined) clearInterval(this.#sweeper);
    await this.#sweeping;
  }
}
