import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  Outcome,
  PENDING,
  contentHash,
  requestOrigin,
  type CandidateConfig,
  type ChatRequest,
  type RequestEvent,
  type ResponseEvent,
} from '@shadow-replay/contracts';
import {
  DeadLetterPublisher,
  OutcomeStore,
  PipelineConsumer,
  RecordAbandonedError,
  ServiceHttpServer,
  TickBatcher,
  chunkByBytes,
  messageBytes,
  callChatCompletion,
  counter,
  createKafka,
  createPipelineProducer,
  createRedis,
  createRegistry,
  ensureTopics,
  gauge,
  openAiError,
  readBody,
  sendJson,
  once,
  runSteps,
  type ChatCallResult,
  type ConsumedRecord,
  type Logger,
  type Service,
} from '@shadow-replay/platform';
import type { Message, Producer } from 'kafkajs';
import { Agent } from 'undici';
import { createInputAdapter, type InputAdapter } from './adapters/index.js';
import { AdaptivePace } from './adaptive-pace.js';
import { Budget, type BudgetReason } from './budget.js';
import { candidateBody, candidateHeaders, estimateTokens, usesTools } from './candidate-request.js';
import { CircuitBreaker, CircuitPermit, CircuitState } from './circuit-breaker.js';
import type { ReplaySettings } from './config.js';
import { RateLimiter, callRetryDelayMs, isRetryableCall, sleep } from '@shadow-replay/platform';
import type { WindowProgress } from './window.js';

interface Arm {
  config: CandidateConfig;
  limiter: RateLimiter;
  /** Adaptive pacing, when the arm asks for it. */
  pace: AdaptivePace | undefined;
  budget: Budget;
  circuit: CircuitBreaker;
  configHash: string;
  url: string;
  /** The arm's own connection pool: its connect timeout is the arm's. */
  agent: Agent;
}

export interface ReplayOptions {
  settings: ReplaySettings;
  log: Logger;
  /** Replay a historical window instead of tapping live traffic (`shadow-replay replay --from --to`). */
  window?: {
    topic: string;
    progress: WindowProgress;
    from: number;
    speed?: number | undefined;
    /** Completion tokens of the window's successful live answers by request id, for `transforms.maxTokensFromStable`. */
    stableCompletionTokens?: ReadonlyMap<string, number> | undefined;
  };
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
  /** Candidate answers of the records in flight, published together. */
  readonly #answers: TickBatcher<Message>;
  readonly #consumer: PipelineConsumer;
  readonly #deadLetters: DeadLetterPublisher;
  readonly #redis;
  readonly #outcomes: OutcomeStore;
  readonly #http: ServiceHttpServer;
  readonly #arms: Arm[];
  readonly #input: InputAdapter;
  readonly #sourceTopics: string[];
  readonly #pausedKey: string;
  #pausedUntilCheck = 0;
  #paused = false;
  readonly #window: ReplayOptions['window'];
  /** When the first record of the window was read (0: not yet); the as-recorded pacing clock. */
  #windowStartedAt = 0;
  /**
   * Set while the experiment is paused: every record waiting on it resumes in the same turn (each
   * polling on its own let them resume up to a poll apart, out of their recorded order).
   */
  #pauseGate: Promise<void> | undefined;
  /** Time spent paused since the recorded schedule started: it resumes where it stopped. */
  #pausedMs = 0;
  /** Stops the pause gate's polling on close. */
  readonly #stopping = new AbortController();
  readonly #kafka;
  readonly #metrics;
  readonly close: () => Promise<void>;

  constructor(options: ReplayOptions) {
    const { settings, log, window } = options;
    this.#settings = settings;
    this.#window = options.window;
    this.#log = log;
    const experimentId = settings.experiment.id;
    this.#kafka = createKafka({ brokers: settings.addresses.kafkaBrokers, clientId: `${settings.kafka.clientId}-replay`, log });
    this.#producer = createPipelineProducer(this.#kafka);
    this.#answers = new TickBatcher(async (messages) => {
      for (const chunk of chunkByBytes(messages, messageBytes)) await this.#producer.send({ topic: settings.kafka.topics.candidateResponses, acks: -1, messages: chunk });
    });
    this.#deadLetters = new DeadLetterPublisher({ producer: this.#producer, topic: settings.kafka.topics.deadLetter, stage: 'replay', log });
    this.#redis = createRedis(settings.addresses.redisUrl, 'shadow-replay');
    this.#outcomes = new OutcomeStore({ redis: this.#redis, keyPrefix: settings.redis.keyPrefix });
    const { budget, endAt } = { budget: settings.experiment.budget, endAt: settings.experiment.budget.endAt };
    this.#arms = settings.experiment.candidates.map((config) => {
      // One hash tag per experiment: an arm's limiter, budget and pause flag share a Cluster slot.
      const key = `${settings.redis.keyPrefix}:replay:{${experimentId}}:${config.name}`;
      const limiter = new RateLimiter({ redis: this.#redis, key: `${key}:rate`, limits: config.rate });
      const { adaptive, rps } = config.rate;
      return {
        config,
        limiter,
        pace: adaptive === undefined || rps === undefined ? undefined : new AdaptivePace({ redis: this.#redis, key: `${key}:pace`, ceiling: rps, settings: adaptive, limiter }),
        budget: new Budget({
          redis: this.#redis,
          key: `${key}:budget`,
          limits: { maxRequests: budget.maxRequests, maxTokens: budget.maxTokens, maxCost: budget.maxCost, endAt: endAt === undefined ? undefined : Date.parse(endAt) },
        }),
        circuit: new CircuitBreaker(config.circuit),
        configHash: contentHash(config),
        url: `${config.baseUrl.replace(/\/$/, '')}/v1/chat/completions`,
        // Enough connections for the arm's concurrency limit: the limiter, not the agent, is the bound.
        agent: new Agent({ connections: Math.max(16, config.rate.concurrency), keepAliveTimeout: 30_000, connect: { timeout: config.timeouts.connectMs } }),
      };
    });
    this.#pausedKey = `${settings.redis.keyPrefix}:replay:{${experimentId}}:paused`;
    const registry = createRegistry('replay');
    this.#metrics = {
      consumed: counter(registry, 'shadow_replay_consumed_total', 'Request events read', ['experiment']),
      outcomes: counter(registry, 'shadow_replay_outcomes_total', 'Outcomes decided by replay', ['experiment', 'arm', 'outcome']),
      calls: counter(registry, 'shadow_replay_candidate_calls_total', 'Candidate calls, by result', ['experiment', 'arm', 'result']),
      retries: counter(registry, 'shadow_replay_retries_total', 'Candidate calls retried', ['experiment', 'arm']),
      shedBudget: counter(registry, 'shadow_replay_budget_exhausted_total', 'Requests shed by the budget, by the limit reached', ['experiment', 'arm', 'limit']),
      circuit: gauge(registry, 'shadow_replay_circuit_open', 'Whether the arm\'s circuit is open (1) or half-open (0.5)', ['experiment', 'arm']),
      paused: gauge(registry, 'shadow_replay_paused', 'Whether the experiment is paused', ['experiment'], () => (this.#paused ? 1 : 0)),
      pace: gauge(registry, 'shadow_replay_pace_rps', 'Requests/s the arm is paced at now (moves under adaptive pacing)', ['experiment', 'arm']),
    };
    this.#input = createInputAdapter(settings.experiment.input, { registryUrl: settings.addresses.schemaRegistryUrl });
    this.#sourceTopics = sourceTopics(settings);
    this.#consumer = new PipelineConsumer({
      kafka: this.#kafka,
      groupId: `shadow-replay.${experimentId}`,
      topics: this.#sourceTopics,
      fromBeginning: options.window !== undefined || settings.experiment.startFrom === 'earliest',
      concurrency: settings.replay.batchConcurrency,
      // Paced work takes long per record: small fetches leave little taken-but-not-done when
      // the group rebalances or the service stops.
      maxBytesPerPartition: settings.replay.maxBytesPerPartition,
      log,
      handle: (record, signal) => this.#handle(record, signal),
      // A window's partition is done once read past its range, whatever offsets held no record.
      ...(window === undefined
        ? {}
        : {
            onBatchHandled: ({ topic, partition, lastOffset }: { topic: string; partition: number; lastOffset: string }) => {
              if (topic === window.topic) window.progress.reached(partition, lastOffset);
            },
          }),
    });
    this.#http = new ServiceHttpServer({
      host: settings.replay.listen.host,
      port: settings.replay.listen.port,
      log,
      registry,
      ready: () => this.#consumer.ready,
      routes: (req, res) => this.#admin(req, res),
    });
    this.close = once(() =>
      runSteps(this.#log, [
        ['pause gate', () => this.#stopping.abort(new Error('replay closing'))],
        ['consumer', () => this.#consumer.close()],
        ['producer', () => this.#producer.disconnect()],
        ['http', () => this.#http.close()],
        ['agents', () => Promise.all(this.#arms.map((arm) => arm.agent.close()))],
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
      // A tapped topic belongs to its producer; only our own topics are created.
      const own = this.#settings.experiment.input.topics === undefined ? [topics.requests] : [];
      await ensureTopics(this.#kafka, [...own, topics.stableResponses, topics.candidateResponses, topics.deadLetter], this.#settings.kafka.partitions);
    }
    await this.#producer.connect();
    // Instances joining a running experiment take up its current adaptive pace.
    for (const arm of this.#arms) {
      await arm.pace?.sync();
      this.#showPace(arm);
    }
    await this.#consumer.start();
    if (this.#window !== undefined) {
      // Records before the window are skipped by #handle anyway; the seek saves reading them.
      for (const partition of this.#window.progress.partitions()) {
        const offset = this.#window.progress.startOffset(partition);
        if (offset !== undefined) this.#consumer.seek(this.#window.topic, partition, offset);
      }
    }
    this.#log.info({ experimentId: this.#settings.experiment.id, arms: this.#arms.map((arm) => arm.config.name), window: this.#window !== undefined }, 'replay started');
  }

  /** Pauses or resumes the experiment for every instance, through Redis. */
  async setPaused(paused: boolean): Promise<void> {
    if (paused) await this.#redis.set(this.#pausedKey, '1');
    else await this.#redis.del(this.#pausedKey);
    this.#pausedUntilCheck = 0;
    this.#log.info({ experimentId: this.#settings.experiment.id, paused }, paused ? 'replay paused' : 'replay resumed');
  }

  /** Returns once the experiment is not paused (at once when it is not). */
  async #whilePaused(signal: AbortSignal): Promise<void> {
    if (!(await this.#isPaused())) return;
    if (this.#pauseGate === undefined) {
      const gate = this.#pollUntilResumed().finally(() => {
        this.#pauseGate = undefined;
      });
      // Handled here too: when every waiting record was abandoned, nobody else awaits it.
      gate.catch(() => undefined);
      this.#pauseGate = gate;
    }
    await abandonable(untilAborted(this.#pauseGate, signal), signal);
  }

  async #pollUntilResumed(): Promise<void> {
    const since = Date.now();
    while (await this.#isPaused()) await sleep(PAUSE_CHECK_MS, this.#stopping.signal);
    if (this.#windowStartedAt !== 0) this.#pausedMs += Date.now() - since;
  }

  async #isPaused(): Promise<boolean> {
    if (Date.now() >= this.#pausedUntilCheck) {
      this.#paused = (await this.#redis.exists(this.#pausedKey)) === 1;
      this.#pausedUntilCheck = Date.now() + 500;
    }
    return this.#paused;
  }

  async #admin(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/admin/pause' && path !== '/admin/resume' && path !== '/admin/status') return false;
    if (!['127.0.0.1', '::1', '::ffff:127.0.0.1'].includes(req.socket.remoteAddress ?? '')) {
      openAiError(res, 403, `${path} answers loopback clients only`, 'permission_error', 'forbidden');
      return true;
    }
    if (path !== '/admin/status') {
      if (req.method !== 'POST') {
        openAiError(res, 405, `${path} accepts POST`, 'invalid_request_error', 'method_not_allowed');
        return true;
      }
      await readBody(req, 1024);
      await this.setPaused(path === '/admin/pause');
    }
    const arms = await Promise.all(
      this.#arms.map(async (arm) => ({
        arm: arm.config.name,
        circuit: arm.circuit.state,
        pacing: arm.pace === undefined ? 'fixed' : 'adaptive',
        rps: arm.pace === undefined ? (arm.limiter.rps ?? null) : await arm.pace.sync(),
        budgetSpent: await arm.budget.spent(),
      })),
    );
    sendJson(res, 200, { experimentId: this.#settings.experiment.id, paused: await this.#isPaused(), arms });
    return true;
  }

  async #handle(record: ConsumedRecord, signal: AbortSignal): Promise<void> {
    const window = this.#window;
    if (window === undefined) {
      await this.#handleInExperiment(record, signal);
      return;
    }
    // A window replay reads only the records stamped in [from, to): the others in (or past) the
    // scanned offsets are not part of this experiment and are neither consumed nor counted.
    if (!window.progress.inRange(record.partition, record.offset)) return;
    const inWindow = window.progress.contains(record.partition, record.offset, Number(record.timestamp));
    if (inWindow) await this.#handleInExperiment(record, signal);
    window.progress.handled(record.partition, inWindow);
  }

  async #handleInExperiment(record: ConsumedRecord, signal: AbortSignal): Promise<void> {
    const experimentId = this.#settings.experiment.id;
    // A paused experiment holds its place in the topic: nothing is consumed, nothing is lost.
    // Stopping or losing the partition while paused leaves the record uncommitted: it is read again.
    await this.#whilePaused(signal);
    // Rejects only when the schema registry is unreachable: the batch is redone, nothing is dead-lettered.
    const decoded = await this.#input.adapt(record);
    this.#metrics.consumed.inc({ experiment: experimentId });
    if (!decoded.ok) {
      await this.#deadLetters.publish(record, decoded.reason, experimentId);
      const id = `dlq:${record.topic}/${record.partition}/${record.offset}`;
      // Undecodable, so without an occurredAt: the record's own timestamp places it in a minute.
      for (const arm of this.#arms) await this.#decide(arm, id, Outcome.deadLetter, recordTime(record.timestamp));
      return;
    }
    const { request, stable } = decoded.value;
    if (stable !== undefined) {
      const value = JSON.stringify(stable);
      const bytes = Buffer.byteLength(value);
      const limit = this.#settings.replay.maxAnswerBytes;
      if (bytes > limit) {
        // Kafka would refuse it, and without its live answer the request can never be paired:
        // no candidate is called for it. (Decoded Avro can be much larger as JSON than as bytes.)
        await this.#deadLetters.publish(record, `too_large: the live answer of this record is ${bytes} bytes as a stable ResponseEvent, over replay.maxAnswerBytes ${limit}; the request is counted dead_letter and not replayed`, experimentId);
        for (const arm of this.#arms) await this.#decide(arm, request.requestId, Outcome.deadLetter, request.occurredAt);
        return;
      }
      // A combined record carries the live answer too; the join stores it with SET, so a
      // redelivery or a second experiment tapping the same topic is harmless.
      await this.#producer.send({ topic: this.#settings.kafka.topics.stableResponses, acks: -1, messages: [{ key: request.requestId, value }] });
    }
    const speed = this.#window?.speed;
    if (this.#window !== undefined && speed !== undefined) {
      // As recorded: the request goes out when its original offset into the window, divided by
      // the speed, has passed. The clock starts with the first record read, not at start(): the
      // group join takes a while, and records due meanwhile would all go out at once.
      // A pause while it waits holds it too, and the schedule resumes where it stopped.
      if (this.#windowStartedAt === 0) this.#windowStartedAt = Date.now();
      const offset = (request.occurredAt - this.#window.from) / speed;
      for (;;) {
        const due = this.#windowStartedAt + this.#pausedMs + offset;
        if (due <= Date.now()) break;
        await abandonable(sleep(Math.min(due - Date.now(), PAUSE_CHECK_MS), signal), signal);
        await this.#whilePaused(signal);
      }
    }
    // The live answer's length, when replay has the answer: a combined record, or a window's loaded answers.
    const stableTokens = stable === undefined ? this.#window?.stableCompletionTokens?.get(request.requestId) : stable.outcome === 'ok' ? stable.usage?.completion : undefined;
    await Promise.all(this.#arms.map((arm) => this.#replayTo(arm, request, stableTokens, record, signal)));
  }

  async #replayTo(arm: Arm, event: RequestEvent, stableTokens: number | undefined, record: ConsumedRecord, signal: AbortSignal): Promise<void> {
    const experimentId = this.#settings.experiment.id;
    const early = this.#earlyOutcome(event, arm);
    if (early !== undefined) {
      await this.#decide(arm, event.requestId, early, event.occurredAt);
      return;
    }
    const previous = await this.#outcomes.consume(experimentId, arm.config.name, event.requestId, PENDING, event.occurredAt);
    // A final outcome means this event was fully handled before a redelivery; pending means
    // the call may not have been published: it is made again unless its answer is marked sent
    // (a crash between the publish and the mark costs one extra call, which the join deduplicates).
    if (previous !== '' && previous !== PENDING) return;
    if (previous === PENDING && (await this.#outcomes.wasSent(experimentId, arm.config.name, event.requestId))) return;
    const body = candidateBody(event, arm.config, stableTokens);
    const tokens = estimateTokens(body, arm.config.rate.expectedOutputTokens);
    const estimate = { tokens: tokens.prompt + tokens.completion, cost: cost(arm, tokens.prompt, tokens.completion) };
    const overBudget = await arm.budget.admit(estimate);
    if (overBudget !== null) {
      await this.#shedBudget(arm, event.requestId, overBudget);
      return;
    }
    let result: ChatCallResult | 'circuit_open' | 'end_time';
    try {
      result = await this.#callWithRetries(arm, event, body, estimate.tokens, signal);
    } catch (error) {
      // Handed over before the first call went out: the budget taken for it goes back, and the
      // outcome stays pending so the partition's next owner makes the call.
      if (error instanceof RecordAbandonedError) await arm.budget.refund(estimate);
      throw error;
    }
    if (result === 'circuit_open') {
      await arm.budget.refund(estimate);
      await this.#settle(arm, event.requestId, Outcome.shedCircuit);
      return;
    }
    if (result === 'end_time') {
      await arm.budget.refund(estimate);
      await this.#shedBudget(arm, event.requestId, 'end_time');
      return;
    }
    this.#metrics.circuit.set({ experiment: experimentId, arm: arm.config.name }, arm.circuit.state === 'open' ? 1 : arm.circuit.state === 'half_open' ? 0.5 : 0);
    const used = result.usage ?? { prompt: tokens.prompt, completion: 0 };
    await arm.budget.settle(estimate, { tokens: used.prompt + used.completion, cost: cost(arm, used.prompt, used.completion) });
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
      // Route, model and tenant of the live request, for the report's slices.
      origin: requestOrigin(event),
    };
    const value = JSON.stringify(response);
    const bytes = Buffer.byteLength(value);
    if (bytes > this.#settings.replay.maxAnswerBytes) {
      // Kafka would refuse it (and the record would be redone and refused forever); the answer
      // carries the request it answers, so a very long prompt is enough. Counted, with a reason.
      this.#metrics.calls.inc({ experiment: experimentId, arm: arm.config.name, result: 'too_large' });
      const reason = `too_large: the answer of arm ${arm.config.name} is ${bytes} bytes (with the ${Buffer.byteLength(JSON.stringify(body))}-byte request it carries), over replay.maxAnswerBytes ${this.#settings.replay.maxAnswerBytes}; the request is counted dead_letter`;
      await this.#deadLetters.publish(record, reason, experimentId);
      await this.#settle(arm, event.requestId, Outcome.deadLetter);
      return;
    }
    await this.#answers.add({ key: event.requestId, value });
    this.#metrics.calls.inc({ experiment: experimentId, arm: arm.config.name, result: result.outcome === 'ok' ? 'ok' : (result.error?.code ?? 'error') });
    if (result.outcome !== 'ok') await this.#settle(arm, event.requestId, Outcome.candidateError);
    else await this.#outcomes.markSent(experimentId, arm.config.name, event.requestId);
  }

  /**
   * Calls the candidate, retrying what is worth retrying; `circuit_open` when the circuit opened
   * while it waited, `end_time` when the budget's end time passed while it waited.
   */
  async #callWithRetries(arm: Arm, event: RequestEvent, body: ChatRequest, tokens: number, signal: AbortSignal): Promise<ChatCallResult | 'circuit_open' | 'end_time'> {
    const experimentId = this.#settings.experiment.id;
    let previous: ChatCallResult | undefined;
    let permit: CircuitPermit | null = null;
    let recorded = false;
    // A retry that may not go out leaves the request with the answer it has, a final failure.
    const stop = (): ChatCallResult | 'end_time' => {
      if (previous === undefined) return 'end_time';
      if (permit !== null) arm.circuit.record(false, Date.now(), permit);
      recorded = true;
      return previous;
    };
    try {
      for (let attempt = 1; ; attempt++) {
        // Each call counts against the request budget, retries too: the candidate never sees more
        // calls than it allows. (The first call was admitted with the request's estimate.)
        if (attempt > 1 && (await arm.budget.admit({ tokens: 0, cost: 0 })) !== null) return stop();
        // The budget admitted the request before it waited for its slot, which may take long: a
        // wait that reaches the end time stops there (an end time further away is checked once
        // the slot is ours), and past it nothing more goes out, retries included.
        const untilEnd = arm.budget.msUntilEnd();
        const endSignal = untilEnd === undefined || untilEnd > END_WAKEUP_HORIZON_MS ? undefined : AbortSignal.timeout(Math.max(1, untilEnd));
        let release: () => Promise<void>;
        try {
          // Only the wait for the first call can be abandoned: once the candidate has seen the
          // request, its retries finish here rather than load the candidate again elsewhere.
          release =
            attempt === 1
              ? await abandonable(arm.limiter.acquire(tokens, endSignal === undefined ? signal : AbortSignal.any([signal, endSignal])), signal)
              : await arm.limiter.acquire(tokens, endSignal);
        } catch (error) {
          if (!(error instanceof RecordAbandonedError) && endSignal?.aborted === true) {
            if (attempt > 1) await arm.budget.refund({ tokens: 0, cost: 0 });
            return stop();
          }
          throw error;
        }
        if (arm.budget.ended()) {
          await release();
          if (attempt > 1) await arm.budget.refund({ tokens: 0, cost: 0 });
          return stop();
        }
        // Checked once the slot is ours: the calls ahead of this one may have opened it. A
        // half-open circuit's single probe is the call that follows; a retry goes out only while
        // the circuit is closed (not while other calls found the candidate failing).
        if (attempt === 1) {
          permit = arm.circuit.allow();
          if (permit === null) {
            await release();
            return 'circuit_open';
          }
        } else if (arm.circuit.state !== CircuitState.closed) {
          await release();
          await arm.budget.refund({ tokens: 0, cost: 0 });
          return stop();
        }
        let result: ChatCallResult;
        try {
          result = await callChatCompletion({
            dispatcher: arm.agent,
            url: arm.url,
            body,
            headers: candidateHeaders(event, arm.config, experimentId, this.#settings.apiKeys[arm.config.name]),
            firstTokenMs: arm.config.timeouts.firstTokenMs,
            idleMs: arm.config.timeouts.idleMs,
            totalMs: arm.config.timeouts.totalMs,
          });
        } catch (error) {
          await release();
          throw error;
        }
        const delay = callRetryDelayMs(attempt, arm.config.retry, result.retryAfterMs);
        // A Retry-After longer than the retry policy allows is honoured by not retrying at all; a
        // probe is one call, its verdict decides the circuit.
        const final = attempt >= arm.config.retry.attempts || !isRetryableCall(result) || delay === null || permit === CircuitPermit.probe;
        // Recorded while the slot is still held, so the next call waiting for it sees the circuit's new state.
        if (final) {
          arm.circuit.record(result.outcome === 'ok', Date.now(), permit ?? CircuitPermit.call);
          recorded = true;
        }
        if (arm.pace !== undefined) {
          await arm.pace.observe(result);
          this.#showPace(arm);
        }
        await release();
        if (final) return result;
        this.#metrics.retries.inc({ experiment: experimentId, arm: arm.config.name });
        previous = result;
        await sleep(delay);
      }
    } finally {
      // A probe whose request failed on our side (Redis, a bug) gave no verdict: let another call probe.
      if (permit === CircuitPermit.probe && !recorded) arm.circuit.abandonProbe();
    }
  }

  #showPace(arm: Arm): void {
    if (arm.limiter.rps !== undefined) this.#metrics.pace.set({ experiment: this.#settings.experiment.id, arm: arm.config.name }, arm.limiter.rps);
  }

  async #settle(arm: Arm, requestId: string, outcome: Outcome, reason?: string): Promise<void> {
    await this.#outcomes.settle(this.#settings.experiment.id, arm.config.name, requestId, outcome, reason);
    this.#metrics.outcomes.inc({ experiment: this.#settings.experiment.id, arm: arm.config.name, outcome });
  }

  /** `shed_budget`, with the limit reached counted for the report and the metrics. */
  async #shedBudget(arm: Arm, requestId: string, limit: BudgetReason): Promise<void> {
    this.#metrics.shedBudget.inc({ experiment: this.#settings.experiment.id, arm: arm.config.name, limit });
    await this.#settle(arm, requestId, Outcome.shedBudget, limit);
  }

  #earlyOutcome(event: RequestEvent, arm: Arm): Outcome | undefined {
    const { sampling, filters, id, maxLagMs } = this.#settings.experiment;
    if (arm.config.toolPolicy === 'skip' && usesTools(event.body)) return Outcome.filtered;
    if (filters.routes !== undefined && !filters.routes.includes(event.route)) return Outcome.filtered;
    if (filters.models !== undefined && !filters.models.includes(event.body.model ?? '')) return Outcome.filtered;
    if (filters.tenants !== undefined && !filters.tenants.includes(event.tenant ?? '')) return Outcome.filtered;
    if (sampling.rate < 1 && hashFraction(`${id}\u0000${event.requestId}`) >= sampling.rate) return Outcome.sampledOut;
    if (maxLagMs !== undefined && this.#window === undefined && Date.now() - event.occurredAt > maxLagMs) return Outcome.shedLag;
    return undefined;
  }

  /** `occurredAt` places the request in its minute's counters, for windowed reports. */
  async #decide(arm: Arm, requestId: string, outcome: Outcome, occurredAt: number | undefined): Promise<void> {
    const previous = await this.#outcomes.consume(this.#settings.experiment.id, arm.config.name, requestId, outcome, occurredAt);
    if (previous === '') this.#metrics.outcomes.inc({ experiment: this.#settings.experiment.id, arm: arm.config.name, outcome });
  }
}

/** A Kafka record's timestamp (ms since the epoch, as a string), or undefined when unusable. */
function recordTime(timestamp: string): number | undefined {
  const time = Number(timestamp);
  return Number.isSafeInteger(time) && time >= 0 ? time : undefined;
}
/** How far ahead of the budget's end time a wait for a slot is set to stop at it (timers are capped at ~24.8 days). */
const END_WAKEUP_HORIZON_MS = 3_600_000;

/** How often a paused replay looks whether it was resumed. */
const PAUSE_CHECK_MS = 250;

/** `work`, or a rejection with the signal's reason as soon as it aborts (the work goes on). */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}

/** Waits for `work`; if it failed because `signal` aborted, the record is abandoned (read again by its next owner). */
async function abandonable<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  try {
    return await work;
  } catch (error) {
    if (signal.aborted) throw new RecordAbandonedError(signal.reason);
    throw error;
  }
}

/** The topics replay reads: the tapped ones, or our request topic. */
export function sourceTopics(settings: ReplaySettings): string[] {
  return settings.experiment.input.topics ?? [settings.kafka.topics.requests];
}

function cost(arm: Arm, promptTokens: number, completionTokens: number): number {
  const prices = arm.config.prices;
  return prices === undefined ? 0 : (promptTokens * prices.inputPerMillion + completionTokens * prices.outputPerMillion) / 1_000_000;
}

function hashFraction(text: string): number {
  return createHash('sha256').update(text).digest().readUInt32BE(0) / 0x1_0000_0000;
}
