import type { ServerResponse } from 'node:http';
import type { SimChatRequest } from './chat-request.js';
import { planCompletion, type SimCompletion } from './completion.js';
import { SimFault } from './faults.js';
import { sendError, untilAborted, wait } from './http-util.js';
import { decodeMs, sampleTtftMs } from './latency.js';
import {
  chunkBody,
  completionBody,
  contentDeltas,
  deltaTokens,
  newCompletionMeta,
  OpenAiErrorType,
  usageChunkBody,
  type CompletionMeta,
} from './openai-format.js';
import { SimTruncateMode, type SimProfile } from './profile.js';
import type { SimStatsCollector } from './stats.js';

/** Everything one chat completion needs; `profile` is a snapshot taken at arrival. */
export interface ChatExchange {
  readonly request: SimChatRequest;
  readonly res: ServerResponse;
  readonly profile: SimProfile;
  readonly fault: SimFault | undefined;
  /** Aborts when the client goes away or the server closes. */
  readonly signal: AbortSignal;
  readonly stats: SimStatsCollector;
}

// A trailing comma: complete-looking, the right length, and still not JSON.
function malformed(value: unknown): string {
  return JSON.stringify(value).replace(/\}$/u, ',}');
}

function cutShort(res: ServerResponse, profile: SimProfile, text: string): void {
  if (profile.truncateMode === SimTruncateMode.Reset) {
    // Let the partial text reach the client, then drop the connection.
    res.write(text, () => res.destroy());
  } else {
    res.end(text);
  }
}

/** Answers a valid chat completion request, applying the drawn or forced fault. */
export async function respondToChat(exchange: ChatExchange): Promise<void> {
  const { request, res, profile, fault, signal, stats } = exchange;
  if (fault !== undefined) stats.fault(fault);

  switch (fault) {
    case SimFault.Error:
      sendError(res, 500, 'The server had an error while processing your request. Sorry about that!', OpenAiErrorType.Server);
      return;
    case SimFault.RateLimit:
      sendError(res, 429, 'Rate limit reached for requests (simulated).', OpenAiErrorType.RateLimit, {
        code: 'rate_limit_exceeded',
        headers: { 'retry-after': String(profile.retryAfterSeconds) },
      });
      return;
    case SimFault.Timeout:
      // Hold the request open; the abort (client gone / server closing) ends it.
      await untilAborted(signal);
      return;
    case SimFault.Stall:
      await stall(exchange);
      return;
    default:
      break;
  }

  const completion = planCompletion(request, profile);
  stats.tokens(completion.completionTokens);
  const meta = newCompletionMeta(request.model !== undefined && request.model !== '' ? request.model : profile.name);
  const ttftMs = sampleTtftMs(profile.ttftMs) * profile.timeScale;

  if (request.stream === true) {
    await streamCompletion(exchange, completion, meta, ttftMs);
  } else {
    await answerOnce(exchange, completion, meta, ttftMs);
  }
}

/** How often a stalled stream sends a comment: well inside any client's idle bound. */
const STALL_KEEPALIVE_MS = 200;

async function stall({ request, res, signal }: ChatExchange): Promise<void> {
  const meta = newCompletionMeta(request.model ?? 'sim');
  if (request.stream !== true) {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.flushHeaders();
    await untilAborted(signal);
    return;
  }
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
  res.write(`data: ${JSON.stringify(chunkBody(meta, { role: 'assistant', content: '' }, null, false))}\n\n`);
  while (await wait(STALL_KEEPALIVE_MS, signal)) res.write(': keep-alive\n\n');
}

async function answerOnce(
  { res, profile, fault, signal }: ChatExchange,
  completion: SimCompletion,
  meta: CompletionMeta,
  ttftMs: number,
): Promise<void> {
  const decode = decodeMs(completion.completionTokens, profile.tokensPerSecond) * profile.timeScale;
  const body = completionBody(meta, completion);

  if (fault === SimFault.Truncate) {
    if (!(await wait(ttftMs + decode / 2, signal))) return;
    const text = JSON.stringify(body);
    res.writeHead(200, { 'content-type': 'application/json' });
    cutShort(res, profile, text.slice(0, Math.floor(text.length / 2)));
    return;
  }
  if (!(await wait(ttftMs + decode, signal))) return;
  const text = fault === SimFault.Malformed ? malformed(body) : JSON.stringify(body);
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function streamCompletion(
  { request, res, profile, fault, signal }: ChatExchange,
  completion: SimCompletion,
  meta: CompletionMeta,
  ttftMs: number,
): Promise<void> {
  const includeUsage = request.stream_options?.include_usage === true;
  const deltas = contentDeltas(completion, profile.chunkTokens);
  const chunkGapMs =
    decodeMs(deltaTokens(completion, deltas.length, profile.chunkTokens), profile.tokensPerSecond) * profile.timeScale;
  // Truncation keeps the first half of the deltas (none when there is only one).
  const sent = fault === SimFault.Truncate ? Math.floor(deltas.length / 2) : deltas.length;
  const writeData = (payload: string): void => {
    res.write(`data: ${payload}\n\n`);
  };

  if (!(await wait(ttftMs, signal))) return;
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    'x-accel-buffering': 'no',
  });
  const role = completion.toolCall === undefined ? { role: 'assistant', content: '' } : { role: 'assistant', content: null };
  writeData(JSON.stringify(chunkBody(meta, role, null, includeUsage)));

  // Chunks are due at fixed offsets from the first token, so timer lateness does not add up.
  const firstTokenAt = performance.now();
  for (let index = 0; index < sent; index += 1) {
    const dueIn = firstTokenAt + index * chunkGapMs - performance.now();
    if (index > 0 && !(await wait(dueIn, signal))) return;
    if (signal.aborted) return;
    const chunk = chunkBody(meta, deltas[index] ?? {}, null, includeUsage);
    // The first content chunk is the broken one: early enough that every answer has it.
    writeData(fault === SimFault.Malformed && index === 0 ? malformed(chunk) : JSON.stringify(chunk));
  }

  if (fault === SimFault.Truncate) {
    cutShort(res, profile, '');
    return;
  }
  writeData(JSON.stringify(chunkBody(meta, {}, completion.finishReason, includeUsage)));
  if (includeUsage) writeData(JSON.stringify(usageChunkBody(meta, completion)));
  writeData('[DONE]');
  res.end();
}
