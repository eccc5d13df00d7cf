import { createHash } from 'node:crypto';
import {
  Outcome,
  PENDING,
  RequestEventSchema,
  contentHash,
  decodeEvent,
  type CandidateConfig,
  type RequestEvent,
  type ResponseEvent,
} from '@shadow-replay/contracts';
import {
  DeadLetterPublisher,
  OutcomeStore,
  PipelineConsumer,
  ServiceHttpServer,
  callChatCompletion,
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
import type { Producer } from 'kafkajs';
import { Agent } from 'undici';
import { candidateBody, candidateHeaders } from './candidate-request.js';
import type { ReplaySettings } from './config.js';
import { RateLimiter } from './rate-limiter.js';

interface Arm {
  config: CandidateConfig;
  limiter: RateLimiter;
  configHash: string;
  url: string;
}

export interface ReplayOptions {
  settings: ReplaySettings;
  log: Logger;
}

/**
 * Reads RequestEvents for one experiment, calls each candidate at its configured pace and
 * publishes every answer, success or failure, as a candidate ResponseEvent. Offsets are
 * committed only after the answer is published.
 */
export class ReplayService implements Service {
  readonly #settings: ReplaySettings;
  readonly #log: Logger;
  readonly #producer: Producer;
  readonly #consumer: PipelineConsumer;
  readonly #deadLetters: DeadLetterPublisher;
  readonly #redis;
  readonly #outcomes: OutcomeStore;
  readonly #http: ServiceHttpServer;
  readonly #agent: Agent;
  readonly #arms: Arm[];
  readonly #kafka;
  readonly #metrics;
  readonly close: () => Promise<void>;

  constructor(options: ReplayOptions) {
    const { settings, log } = options;
    this.#settings = settings;
    this.#log = log;
    const experimentId = settings.experiment.id;
    this.#kafka = createKafka({ brokers: settings.addresses.kafkaBrokers, clientId: `${settings.kafka.clientId}-replay`, log });
    this.#producer = createPipelineProducer(this.#kafka);
    this.#deadLetters = new DeadLetterPublisher({ producer: this.#producer, topic: settings.kafka.topics.deadLetter, stage: 'replay', log });
    this.#redis = createRedis(settings.addresses.redisUrl, 'shadow-replay');
    this.#outcomes = new OutcomeStore({ redis: this.#redis, keyPrefix: settings.redis.keyPrefix });
    this.#agent = new Agent({ connections: 256, keepAliveTimeout: 30_000, connect: { timeout: 5_000 } });
    this.#arms = settings.experiment.candidates.map((config) => ({
      config,
      limiter: new RateLimiter({ concurrency: config.rate.concurrency, rps: config.rate.rps }),
      configHash: contentHash(config),
      url: `${config.baseUrl.replace(/\/$/, '')}/v1/chat/completions`,
    }));
    const registry = createRegistry('replay');
    this.#metrics = {
      consumed: counter(registry, 'shadow_replay_consumed_total', 'Request events read', ['experiment']),
      outcomes: counter(registry, 'shadow_replay_outcomes_total', 'Outcomes decided by replay', ['experiment', 'arm', 'outcome']),
      calls: counter(registry, 'shadow_replay_candidate_calls_total', 'Candidate calls, by result', ['experiment', 'arm', 'result']),
    };
    this.#consumer = new PipelineConsumer({
      kafka: this.#kafka,
      groupId: `shadow-replay.${experimentId}`,
      topics: [settings.kafka.topics.requests],
      fromBeginning: settings.experiment.startFrom === 'earliest',
      concurrency: settings.replay.batchConcurrency,
      log,
      handle: (record) => this.#handle(record),
    });
    this.#http = new ServiceHttpServer({
      host: settings.replay.listen.host,
      port: settings.replay.listen.port,
      log,
      registry,
      ready: () => this.#consumer.ready,
    });
    this.close = once(() =>
      runSteps(this.#log, [
        ['consumer', () => this.#consumer.close()],
        ['producer', () => this.#producer.disconnect()],
        ['http', () => this.#http.close()],
        ['agent', () => this.#agent.close()],
        ['redis', () => this.#redis.quit()],
      ]),
    );
  }

  get httpUrl(): string {
    return this.#http.url;
  }

  get ready(): boolean {
    return this.#consumer.ready;
  }

  async start(): Promise<void> {
    await this.#http.start();
    const topics = this.#settings.kafka.topics;
    if (this.#settings.kafka.createTopics) {
      await ensureTopics(this.#kafka, [topics.requests, topics.candidateResponses, topics.deadLetter], this.#settings.kafka.partitions);
    }
    await this.#producer.connect();
    await this.#consumer.start();
    this.#log.info({ experimentId: this.#settings.experiment.id, arms: this.#arms.map((arm) => arm.config.name) }, 'replay started');
  }

  async #handle(record: ConsumedRecord): Promise<void> {
    const experimentId = this.#settings.experiment.id;
    this.#metrics.consumed.inc({ experiment: experimentId });
    const decoded = decodeEvent(RequestEventSchema, record.value);
    if (!decoded.ok) {
      await this.#deadLetters.publish(record, decoded.reason, experimentId);
      const id = `dlq:${record.topic}/${record.partition}/${record.offset}`;
      for (const arm of this.#arms) await this.#decide(arm, id, Outcome.deadLetter);
      return;
    }
    await Promise.all(this.#arms.map((arm) => this.#replayTo(arm, decoded.value)));
  }

  async #replayTo(arm: Arm, event: RequestEvent): Promise<void> {
    const experimentId = this.#settings.experiment.id;
    const early = this.#earlyOutcome(event);
    if (early !== undefined) {
      await this.#decide(arm, event.requestId, early);
      return;
    }
    const previous = await this.#outcomes.consume(experimentId, arm.config.name, event.requestId, PENDING);
    // A final outcome means this event was fully handled before a redelivery; pending means
    // the call may not have been published, so it is made again (the join deduplicates).
    if (previous !== '' && previous !== PENDING) return;
    const body = candidateBody(event, arm.config);
    const release = await arm.limiter.acquire();
    let result;
    try {
      result = await callChatCompletion({
        dispatcher: this.#agent,
        url: arm.url,
        body,
        headers: candidateHeaders(event, arm.config, experimentId, this.#settings.apiKeys[arm.config.name]),
        firstTokenMs: arm.config.timeouts.firstTokenMs,
        totalMs: arm.config.timeouts.totalMs,
      });
    } finally {
      release();
    }
    const response: ResponseEvent = {
      schemaVersion: 1,
      requestId: event.requestId,
      experimentId,
      arm: arm.config.name,
      occurredAt: Date.now(),
      endpoint: { name: arm.config.name, model: result.response?.model ?? body.model ?? null },
      outcome: result.outcome,
      status: result.status,
      error: result.error,
      response: result.response,
      usage: result.usage,
      timing: result.timing,
      streamed: result.streamed,
      request: body,
      configHash: arm.configHash,
    };
    await this.#producer.send({
      topic: this.#settings.kafka.topics.candidateResponses,
      acks: -1,
      messages: [{ key: event.requestId, value: JSON.stringify(response) }],
    });
    this.#metrics.calls.inc({ experiment: experimentId, arm: arm.config.name, result: result.outcome === 'ok' ? 'ok' : (result.error?.code ?? 'error') });
    if (result.outcome !== 'ok') {
      await this.#outcomes.settle(experimentId, arm.config.name, event.requestId, Outcome.candidateError);
      this.#metrics.outcomes.inc({ experiment: experimentId, arm: arm.config.name, outcome: Outcome.candidateError });
    }
  }

  #earlyOutcome(event: RequestEvent): Outcome | undefined {
    const { sampling, filters, id } = this.#settings.experiment;
    if (filters.routes !== undefined && !filters.routes.includes(event.route)) return Outcome.filtered;
    if (filters.models !== undefined && !filters.models.includes(event.body.model ?? '')) return Outcome.filtered;
    if (sampling.rate < 1 && hashFraction(`${id}\u0000${event.requestId}`) >= sampling.rate) return Outcome.sampledOut;
    return undefined;
  }

  async #decide(arm: Arm, requestId: string, outcome: Outcome): Promise<void> {
    const previous = await this.#outcomes.consume(this.#settings.experiment.id, arm.config.name, requestId, outcome);
    if (previous === '') this.#metrics.outcomes.inc({ experiment: this.#settings.experiment.id, arm: arm.config.name, outcome });
  }
}

function hashFraction(text: string): number {
  return createHash('sha256').update(text).digest().readUInt32BE(0) / 0x1_0000_0000;
}
