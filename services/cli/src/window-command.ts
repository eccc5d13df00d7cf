import { ResponseEventSchema, decodeEvent, type ShadowConfig } from '@shadow-replay/contracts';
import { JoinState } from '@shadow-replay/join';
import { OutcomeStore, createKafka, createRedis, type Logger } from '@shadow-replay/platform';
import { ReplayService, WindowProgress, readRanges, replaySettings, sourceTopics, windowRanges } from '@shadow-replay/replay';
import { cliEnv } from './settings.js';

export interface WindowRequest {
  config: ShadowConfig;
  from: number;
  to: number;
  speed?: number | undefined;
  rate?: number | undefined;
  experimentId?: string | undefined;
  log: Logger;
  print: (line: string) => void;
  /** Called with progress text; a terminal redraws one line, anything else gets one line per 10%. */
  progress?: (line: string, final: boolean) => void;
}

export interface WindowSummary {
  experimentId: string;
  /** Records stamped in [from, to): the window's requests, all replayed. */
  total: number;
  /** Requests of the window handled (equal to `total` once the window is done). */
  handled: number;
  /** Records read in the scanned offsets whose timestamps are outside the window (left alone). */
  outside: number;
  /** Scanned offsets that held no record to read: transaction markers, aborted or compacted records. */
  skipped: number;
  stablePreloaded: number;
  seconds: number;
  outcomes: Record<string, Record<string, number>>;
}

/** How long stable answers loaded for a window stay available to the join. */
const STABLE_TTL_MS = 24 * 3600_000;
/** Stable answers are published after the request; look this far past the window for them. */
const STABLE_LATE_MS = 30 * 60_000;

/**
 * `shadow-replay replay --from T1 --to T2`: replays the requests recorded in [T1, T2) to the
 * candidates under its own experiment id and consumer group, with the stable answers of the same
 * window loaded into the join's state so the running join pairs them, then exits with a summary.
 */
export async function runWindow(request: WindowRequest): Promise<WindowSummary> {
  const base = request.config.experiment;
  if (base === undefined) throw new Error('the configuration has no experiment (experiment.id, candidates)');
  if (!(request.from < request.to)) throw new Error('--from must be earlier than --to');
  const experimentId = request.experimentId ?? windowExperimentId(base.id, request.from, request.to);
  const config: ShadowConfig = {
    ...request.config,
    experiment: {
      ...base,
      id: experimentId,
      maxLagMs: undefined,
      candidates: base.candidates.map((candidate) => (request.rate === undefined ? candidate : { ...candidate, rate: { ...candidate.rate, rps: request.rate } })),
    },
  };
  const settings = replaySettings(config, cliEnv());
  const kafka = createKafka({ brokers: settings.addresses.kafkaBrokers, clientId: `${config.kafka.clientId}-window`, log: request.log });
  const topics = config.kafka.topics;
  const started = Date.now();

  const [sourceTopic, ...others] = sourceTopics(settings);
  if (sourceTopic === undefined || others.length > 0) throw new Error('a window replay reads one topic; experiment.input.topics names several');
  const lateMs = settings.replay.windowLateMs;
  const ranges = await windowRanges(kafka, sourceTopic, request.from, request.to, lateMs);
  const progress = new WindowProgress(ranges, { from: request.from, to: request.to });
  request.print(
    `window ${new Date(request.from).toISOString()} → ${new Date(request.to).toISOString()}: ${progress.total} offsets in ${ranges.length} partitions, up to ${progress.total} records to read (transaction markers, aborted and compacted records take offsets and are never read; records written up to ${Math.round(lateMs / 1000)} s after the window's end included); experiment ${experimentId}`,
  );

  const redis = createRedis(settings.addresses.redisUrl, 'shadow-window');
  let stablePreloaded = 0;
  // Kept only when an arm sets max_tokens from the live answer's length: one number per answer.
  const stableCompletionTokens = base.candidates.some((candidate) => candidate.transforms.maxTokensFromStable !== undefined) ? new Map<string, number>() : undefined;
  try {
    const join = new JoinState({ redis, keyPrefix: config.redis.keyPrefix, windowMs: STABLE_TTL_MS });
    const stableRanges = await windowRanges(kafka, topics.stableResponses, request.from - 60_000, request.to + STABLE_LATE_MS, lateMs);
    await readRanges(kafka, topics.stableResponses, stableRanges, async (record) => {
      const decoded = decodeEvent(ResponseEventSchema, record.value);
      if (!decoded.ok) return;
      await join.offerStable(decoded.value.requestId, { event: record.value?.toString('utf8') ?? '', topic: topics.stableResponses, partition: record.partition, offset: record.offset });
      stablePreloaded++;
      const completion = decoded.value.outcome === 'ok' ? decoded.value.usage?.completion : undefined;
      if (completion !== undefined) stableCompletionTokens?.set(decoded.value.requestId, completion);
    });
    request.print(`loaded ${stablePreloaded} stable answers of the window for the join`);

    const service = new ReplayService({ settings, log: request.log, window: { topic: sourceTopic, progress, from: request.from, speed: request.speed, stableCompletionTokens } });
    await service.start();
    const report = progressReporter(progress, started, request.progress ?? ((line) => request.print(line)));
    const timer = setInterval(report, 500);
    try {
      await progress.finished;
    } finally {
      clearInterval(timer);
      report(true);
      await service.close();
    }
    const outcomes = await new OutcomeStore({ redis, keyPrefix: config.redis.keyPrefix }).allCounts(experimentId);
    return {
      experimentId,
      total: progress.inWindow,
      handled: progress.inWindow,
      outside: progress.done - progress.inWindow,
      skipped: progress.skipped,
      stablePreloaded,
      seconds: (Date.now() - started) / 1000,
      outcomes,
    };
  } finally {
    await redis.quit();
  }
}

/** `<experiment>-w<from>-<to>` in UTC minutes, within the 64 characters an id may have. */
export function windowExperimentId(base: string, from: number, to: number): string {
  const stamp = (ms: number) => new Date(ms).toISOString().replace(/[-:]/g, '').slice(0, 13);
  const suffix = `-w${stamp(from)}-${stamp(to)}`;
  return `${base.slice(0, 64 - suffix.length)}${suffix}`;
}

/**
 * The bar counts offsets passed (records read, and the offsets of finished partitions that held
 * none), so it reaches the end exactly when the scan does; `total` is exact in offsets and an
 * upper bound in records.
 */
function progressReporter(progress: WindowProgress, started: number, emit: (line: string, final: boolean) => void): (final?: boolean) => void {
  let lastTenth = -1;
  return (final = false) => {
    const scanned = progress.scanned;
    const total = Math.max(1, progress.total);
    const seconds = (Date.now() - started) / 1000;
    const rate = scanned / Math.max(0.001, seconds);
    const eta = rate > 0 ? (progress.total - scanned) / rate : Number.POSITIVE_INFINITY;
    const width = 30;
    const filled = Math.min(width, Math.round((scanned / total) * width));
    const skipped = progress.skipped > 0 ? `, ${progress.skipped} offsets skipped` : '';
    const line = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${scanned}/${progress.total} offsets: ${progress.done} records read${skipped}, ${progress.inWindow} in the window ${((scanned / total) * 100).toFixed(1)}% ${rate.toFixed(1)}/s ETA ${Number.isFinite(eta) ? `${Math.ceil(eta)}s` : '–'}`;
    const tenth = Math.floor((scanned / total) * 10);
    if (final || process.stdout.isTTY || tenth > lastTenth) {
      lastTenth = tenth;
      emit(line, final);
    }
  };
}
