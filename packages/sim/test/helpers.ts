import type { TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { request, type Dispatcher } from 'undici';
import { createSimServer, type SimServer, type SimServerOptions } from '../src/index.js';

/** Starts a sim server on 127.0.0.1:0 and closes it when the test ends. */
export async function startSim(
  t: TestContext,
  options: SimServerOptions = {},
): Promise<{ server: SimServer; url: string }> {
  const server = createSimServer({ host: '127.0.0.1', port: 0, ...options });
  t.after(() => server.close());
  const { url } = await server.start();
  return { server, url };
}

export interface HttpResult {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly text: string;
}

/** POSTs a chat completion (a string body is sent as is) and reads the whole answer. */
export async function chat(
  url: string,
  body: unknown,
  options: { headers?: Record<string, string>; dispatcher?: Dispatcher; signal?: AbortSignal } = {},
): Promise<HttpResult> {
  const response = await request(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...options.headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    ...(options.dispatcher === undefined ? {} : { dispatcher: options.dispatcher }),
    ...(options.signal === undefined ? {} : { signal: options.signal }),
  });
  return { status: response.statusCode, headers: response.headers, text: await response.body.text() };
}

export async function get(url: string): Promise<HttpResult> {
  const response = await request(url);
  return { status: response.statusCode, headers: response.headers, text: await response.body.text() };
}

export function userMessages(content: string): { role: string; content: string }[] {
  return [{ role: 'user', content }];
}

/** The payloads of the `data:` lines of an SSE body, in order. */
export function sseData(text: string): string[] {
  return text
    .split('\n\n')
    .map((event) => event.trim())
    .filter((event) => event.startsWith('data: '))
    .map((event) => event.slice('data: '.length));
}

export interface ChunkLike {
  object?: string;
  choices: { delta: { role?: string; content?: string | null }; finish_reason: string | null }[];
  usage?: { prompt_tokens: number; completion_tokens: number; total_tokens: number } | null;
}

/** Parses every data line but `[DONE]`; throws on a line that is not JSON. */
export function sseChunks(text: string): ChunkLike[] {
  return sseData(text)
    .filter((data) => data !== '[DONE]')
    .map((data) => JSON.parse(data) as ChunkLike);
}

export function assembledContent(chunks: readonly ChunkLike[]): string {
  return chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join('');
}

export interface CompletionLike {
  id: string;
  object: string;
  created: number;
  model: string;
  choices: {
    index: number;
    message: {
      role: string;
      content: string | null;
      tool_calls?: { id: string; type: string; function: { name: string; arguments: string } }[];
    };
    finish_reason: string;
  }[];
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
}

export function completion(result: HttpResult): CompletionLike {
  return JSON.parse(result.text) as CompletionLike;
}

export function contentOf(result: HttpResult): string {
  const content = completion(result).choices[0]?.message.content;
  if (typeof content !== 'string') throw new Error(`no text content in ${result.text}`);
  return content;
}

/** Polls `condition` every few ms until it holds; fails after `timeoutMs` instead of hanging. */
export async function waitFor(condition: () => boolean, timeoutMs = 2000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}

/** Runs `task` over `items` with at most `limit` at a time, keeping order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, task: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const index = next;
      next += 1;
      results[index] = await task(items[index] as T);
    }
  });
  await Promise.all(workers);
  return results;
}
