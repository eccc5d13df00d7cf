import {
  Outcome,
  PENDING,
  ResponseEventSchema,
  decodeEvent,
  evalQueuePrefix,
  PAIR_JOB_BACKOFF,
  pairJobId,
  type PairJob,
  type ResponseEvent,
} from '@shadow-replay/contracts';
import {
  DeadLetterPublisher,
  OutcomeStore,
  PipelineConsumer,
  ServiceHttpServer,
  TickBatcher,
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
import { Redis } from 'ioredis';
import type { JoinSettings } from './config.js';
import { JoinState, PairReport, type StoredSide } from './join-state.js';

type BulkJob = Parameters<Queue['addBulk']>[number][number];

/** Completed and failed jobs are kept this long so their ids keep deduplicating (DESIGN §3). */
export const JOB_RETENTION_SECONDS = 7 * 24 * 3600;

/** The codes that start the `x-dlq-reason` of the join's dead letters. */
export const JoinDeadLetterReason = {
  /** Not a valid ResponseEvent (the decoder's own codes, such as `invalid_json`, are kept as they are). */
  schemaInvalid: 'schema_invalid',
  /** A side of a pair whose window had already expired; the request was counted `stable_missing`. */
  lateArrival: 'late_arrival',
  /** A side larger than `join.maxPayloadBytes`; the request is counted `dead_letter`. */
  tooLarge: 'too_large',
} as const;
export type JoinDeadLetterReason = (typeof JoinDeadLetterReason)[keyof typeof JoinDeadLetterReason];

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
  readonly #redis: Redis;
  readonly #queueRedis: Redis;
  readonly #state: JoinState;
  readonly #outcomes: OutcomeStore;
  readonly #queue: Queue;
  /**
   * The jobs handed off in one turn of the event loop go in one `addBulk` (one MULTI, one socket
   * write) instead of a round trip each, which is most of the join's cost per pair. Job ids are
   * deterministic, so a batch redone after a failed write adds nothing twice.
   */
  readonly #jobs: TickBatcher<BulkJob>;
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
    // Up to 128 records are in flight, each sending small independent scripts: with auto-pipelining
    // the commands issued in one tick leave in one socket write instead of one write each.
    this.#redis = new Redis(settings.addresses.redisUrl, { maxRetriesPerRequest: null, connectionName: 'shadow-join', enableReadyCheck: true, enableAutoPipelining: true });
    // BullMQ on a connection of its own, without auto-pipelining (BullMQ does not support it).
    this.#queueRedis = createRedis(settings.addresses.redisUrl, 'shadow-join-queue');
    this.#state = new JoinState({ redis: this.#redis, keyPrefix: settings.redis.keyPrefix, windowMs: settings.windowMs, expiredTtlMs: settings.join.lateArrivalTtlMs });
    this.#outcomes = new OutcomeStore({ redis: this.#redis, keyPrefix: settings.redis.keyPrefix });
    this.#queue = new Queue(settings.redis.evalQueue, { connection: this.#queueRedis, prefix: evalQueuePrefix(settings.redis.keyPrefix) });
    this.#jobs = new TickBatcher((jobs) => this.#queue.addBulk(jobs));
    const registry = createRegistry('join');
    this.#metrics = {
      events: counter(registry, 'shadow_join_events_total', 'Response events read, by side', ['side']),
      pairs: counter(registry, 'shadow_join_pairs_total', 'Pairs handed to the evaluation queue'),
      expired: counter(registry, 'shadow_join_expired_total', 'Candidate answers whose stable side never came'),
      deadLetters: counter(registry, 'shadow_join_dead_letters_total', 'Response events dead-lettered, by reason (schema_invalid and the decoder\'s codes, late_arrival, too_large)', ['reason']),
      late: counter(registry, 'shadow_join_late_arrivals_total', 'Sides that came after their pair\'s window expired (dead-lettered, never paired), by side', ['side']),
      tooLarge: counter(registry, 'shadow_join_too_large_total', 'Response events over join.maxPayloadBytes, by side', ['side']),
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
        ['queue redis', () => this.#queueRedis.quit()],
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
      await this.#deadLetter(record, decoded.reason);
      return;
    }
    const event = decoded.value;
    const bytes = record.value?.length ?? 0;
    const tooLarge = bytes > this.#settings.join.maxPayloadBytes;
    if (tooLarge) this.#metrics.tooLarge.inc({ side: isStable ? 'stable' : 'candidate' });
    // A side over the limit is not stored: only a marker and its location stand in for it.
    const side: StoredSide = tooLarge
      ? { event: '', topic: record.topic, partition: record.partition, offset: record.offset, tooLargeBytes: bytes }
      : { event: record.value?.toString('utf8') ?? '', topic: record.topic, partition: record.partition, offset: record.offset };
    this.#metrics.events.inc({ side: isStable ? 'stable' : 'candidate' });
    if (isStable) {
      const offer = await this.#state.receiveStable(event.requestId, side);
      for (const waiting of offer.waiting) {
        await this.#handOff(event.requestId, waiting.experimentId, waiting.arm, side, waiting.side, { stable: decoded.json as ResponseEvent });
      }
      for (const late of offer.late) await this.#reportLate(record, event.requestId, late.experimentId, late.arm, PairReport.lateStable);
      return;
    }
    if (event.experimentId === undefined) {
      await this.#deadLetter(record, `${JoinDeadLetterReason.schemaInvalid}: experimentId: required on a candidate response`);
      return;
    }
    // Failed candidate calls were counted as candidate_error by replay; there is nothing to pair.
    if (event.outcome !== 'ok') return;
    if (tooLarge) {
      const status = await this.#state.checkCandidate(event.requestId, event.experimentId, event.arm);
      if (status === 'open') await this.#refuseTooLarge(record, event.requestId, event.experimentId, event.arm);
      else if (status === 'late') await this.#reportLate(record, event.requestId, event.experimentId, event.arm, PairReport.lateCandidate);
      return;
    }
    const offer = await this.#state.offerCandidate(event.requestId, event.experimentId, event.arm, side);
    // The candidate was paired on arrival: no deadline was set for it (one left by an earlier
    // delivery that waited is removed by the sweeper, which finds the pair done).
    if (offer.state === 'paired') await this.#handOff(event.requestId, event.experimentId, event.arm, offer.stable, side, { candidate: decoded.json as ResponseEvent, deadline: false });
    else if (offer.state === 'late') await this.#reportLate(record, event.requestId, event.experimentId, event.arm, PairReport.lateCandidate);
  }

  /**
   * `read`: the side of the record in hand, as parsed when it was decoded (the stored side is
   * parsed here; both are the events as published, unknown fields kept, whichever came first).
   * `deadline: false`: the candidate never waited, so there is no deadline to remove.
   */
  async #handOff(
    requestId: string,
    experimentId: string,
    arm: string,
    stableSide: StoredSide,
    candidateSide: StoredSide,
    read: { stable?: ResponseEvent; candidate?: ResponseEvent; deadline?: boolean },
  ): Promise<void> {
    if (stableSide.tooLargeBytes !== undefined) {
      await this.#refuseTooLarge(candidateRecord(requestId, candidateSide), requestId, experimentId, arm, stableSide);
      return;
    }
    // Both sides passed ResponseEventSchema when they were read, and the evaluator validates the
    // job it takes: validating the pair once more here cost a tenth of the join's time per pair.
    const stable = read.stable ?? (JSON.parse(stableSide.event) as ResponseEvent);
    const candidate = read.candidate ?? (JSON.parse(candidateSide.event) as ResponseEvent);
    const job: PairJob = {
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
    };
    await this.#jobs.add({
      name: 'pair',
      data: job,
      opts: {
        jobId: pairJobId(experimentId, requestId, arm),
        attempts: this.#settings.evaluationAttempts,
        // The evaluator's worker computes each wait from its evaluator.backoff (see PAIR_JOB_BACKOFF).
        backoff: { type: PAIR_JOB_BACKOFF },
        removeOnComplete: { age: JOB_RETENTION_SECONDS },
        removeOnFail: { age: JOB_RETENTION_SECONDS },
      },
    });
    await this.#state.markDone(requestId, experimentId, arm, read.deadline ?? true);
    this.#metrics.pairs.inc();
  }

  /**
   * A pair with a side over `join.maxPayloadBytes` is never paired: the candidate record is
   * dead-lettered (for an oversized stable side, with the stable side's location in the
   * reason), the request counted `dead_letter`, and the pair marked done so a redelivery is
   * ignored.
   */
  async #refuseTooLarge(candidate: ConsumedRecord, requestId: string, experimentId: string, arm: string, stable?: StoredSide): Promise<void> {
    // Settled first: settling is idempotent, the dead letter is written by whoever claims it.
    await this.#outcomes.settle(experimentId, arm, requestId, Outcome.deadLetter);
    if (await this.#state.claimReport(requestId, experimentId, arm, PairReport.tooLarge)) {
      const limit = this.#settings.join.maxPayloadBytes;
      const reason =
        stable === undefined
          ? `${JoinDeadLetterReason.tooLarge}: the candidate answer is ${candidate.value?.length ?? 0} bytes, over join.maxPayloadBytes ${limit}; the request is counted dead_letter`
          : `${JoinDeadLetterReason.tooLarge}: the stable answer (${stable.topic} ${stable.partition}/${stable.offset}) is ${stable.tooLargeBytes ?? 0} bytes, over join.maxPayloadBytes ${limit}; the request is counted dead_letter`;
      await this.#deadLetter(candidate, reason, experimentId);
      await this.#state.markReported(requestId, experimentId, arm, PairReport.tooLarge);
    }
    await this.#state.markDone(requestId, experimentId, arm);
  }

  /**
   * A side that came after its pair's window expired: the request was already counted
   * `stable_missing`, so the side is dead-lettered and counted apart, and conservation is untouched.
   */
  async #reportLate(record: ConsumedRecord, requestId: string, experimentId: string, arm: string, side: typeof PairReport.lateStable | typeof PairReport.lateCandidate): Promise<void> {
    const which = side === PairReport.lateStable ? 'stable' : 'candidate';
    const reason = `${JoinDeadLetterReason.lateArrival}: the ${which} answer came after the join window of arm ${arm} expired; the request was counted stable_missing`;
    await this.#deadLetter(record, reason, experimentId);
    this.#metrics.late.inc({ side: which });
    await this.#state.markReported(requestId, experimentId, arm, side);
  }

  async #deadLetter(record: ConsumedRecord, reason: string, experimentId?: string): Promise<void> {
    this.#metrics.deadLetters.inc({ reason: reason.split(':', 1)[0] ?? 'unknown' });
    await this.#deadLetters.publish(record, reason, experimentId);
  }

  async #sweep(): Promise<void> {
    try {
      const expired = await this.#state.expire();
      for (const pair of expired) {
        const before = await this.#outcomes.settle(pair.experimentId, pair.arm, pair.requestId, Outcome.stableMissing);
        // A pair claimed again after a sweeper died mid-way was settled already: count it once.
        if (before === '' || before === PENDING) this.#metrics.expired.inc();
      }
      await this.#state.acknowledgeExpired(expired);
    } catch (error) {
      this.#log.warn({ err: error }, 'join sweep failed; retrying next interval');
    }
  }

  async #stopSweeper(): Promise<void> {
    if (this.#sweeper !== undefined) clearInterval(this.#sweeper);
    await this.#sweeping;
  }
}

/** The candidate record a stored side was read from, to dead-letter it. */
function candidateRecord(requestId: string, side: StoredSide): ConsumedRecord {
  return { topic: side.topic, partition: side.partition, offset: side.offset, timestamp: '', key: Buffer.from(requestId), value: Buffer.from(side.event), headers: {} };
}
