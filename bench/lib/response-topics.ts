/**
 * Filling the stable and candidate response topics with ResponseEvents as the gateway and
 * replay publish them (a streamed answer of about `answerTokens` tokens, the candidate carrying
 * the request it was sent), before a join starts: its input, pre-filled.
 */
import { samplePrompt } from '@shadow-replay/cli';
import type { ResponseEvent } from '@shadow-replay/contracts';
import type { Kafka } from 'kafkajs';

/** Messages per produce request; with keys spread over the partitions, each partition's batch stays far below 1 MiB. */
const SEND_BATCH = 500;

const WORDS = ['the', 'queue', 'holds', 'each', 'request', 'until', 'a', 'worker', 'takes', 'it', 'and', 'answers', 'with', 'tokens', 'that', 'stream', 'back', 'to', 'client', 'in', 'order'];

/** About `tokens` tokens of text (one word and a space is about one token and a third of a word's letters). */
export function answerText(index: number, tokens: number): string {
  const words: string[] = [];
  for (let at = 0; at < tokens; at++) words.push(WORDS[(index * 7 + at * 3) % WORDS.length] ?? 'x');
  return `${words.join(' ')}.`;
}

export interface ResponseFill {
  /** Request ids are `${idPrefix}-${index}`. */
  idPrefix: string;
  experimentId: string;
  arm: string;
  answerTokens: number;
}

/** The n-th benchmark answer of one side: `stable` as the gateway publishes it, or the candidate's as replay does. */
export function benchResponseEvent(index: number, side: 'stable' | 'candidate', fill: ResponseFill, occurredAt = Date.now()): ResponseEvent {
  const requestId = `${fill.idPrefix}-${index}`;
  const candidate = side === 'candidate';
  const e2eMs = candidate ? 900 + (index % 400) : 800 + (index % 300);
  const request = { model: 'sim', messages: [{ role: 'user', content: samplePrompt(index) }] };
  return {
    schemaVersion: 1,
    requestId,
    ...(candidate ? { experimentId: fill.experimentId } : {}),
    arm: candidate ? fill.arm : 'stable',
    occurredAt,
    endpoint: { name: candidate ? fill.arm : 'stable', model: 'sim' },
    outcome: 'ok',
    status: 200,
    error: null,
    response: { id: `chatcmpl-${side}-${index}`, model: 'sim', choices: [{ index: 0, content: answerText(candidate ? index + 1 : index, fill.answerTokens), toolCalls: [], finishReason: 'stop' }] },
    usage: { prompt: 24, completion: fill.answerTokens, total: 24 + fill.answerTokens, source: 'usage' },
    timing: {
      sentAt: occurredAt - e2eMs,
      ttftMs: e2eMs / 8,
      e2eMs,
      tpotMs: (e2eMs * 7) / 8 / (fill.answerTokens - 1),
      itl: { n: fill.answerTokens - 1, p50: 3.1, p90: 4.8, p99: 9.7, max: 21.4 },
      outputTokensPerSec: fill.answerTokens / ((e2eMs * 7) / 8 / 1000),
    },
    streamed: true,
    ...(candidate ? { request: { ...request, stream: true, stream_options: { include_usage: true } }, configHash: '3f2a9c1d0b7e6a54' } : {}),
    origin: { route: '/v1/chat/completions', model: 'sim', tenant: `tenant-${index % 3}`, headers: { 'user-agent': 'bench/1.0' } },
  };
}

/**
 * Produces one side's answers for indexes [from, to), keyed by request id (co-partitioned with
 * the other side), in batches. Returns the bytes of the values written.
 */
export async function prefillResponses(kafka: Kafka, topic: string, side: 'stable' | 'candidate', fill: ResponseFill, range: { from: number; to: number }, onProgress?: (sent: number) => void): Promise<number> {
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  let bytes = 0;
  try {
    for (let start = range.from; start < range.to; start += SEND_BATCH) {
      const end = Math.min(range.to, start + SEND_BATCH);
      const messages = [];
      for (let index = start; index < end; index++) {
        const value = JSON.stringify(benchResponseEvent(index, side, fill));
        bytes += Buffer.byteLength(value);
        messages.push({ key: `${fill.idPrefix}-${index}`, value });
      }
      await producer.send({ topic, acks: -1, messages });
      onProgress?.(end - range.from);
    }
  } finally {
    await producer.disconnect();
  }
  return bytes;
}
