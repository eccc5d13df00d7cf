import assert from 'node:assert/strict';
import { test } from 'node:test';
import { request } from 'undici';
import { startSim, userMessages } from './helpers.js';

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

async function timeToFirstChunk(url: string, prompt: string): Promise<number> {
  const started = performance.now();
  const response = await request(`${url}/v1/chat/completions`, {
    method: 'POST',
    body: JSON.stringify({ messages: userMessages(prompt), stream: true }),
  });
  // Headers and the first chunks leave together, at the first token.
  const elapsed = performance.now() - started;
  await response.body.dump();
  return elapsed;
}

test('time to first token roughly follows a 100 ms median profile', async (t) => {
  const { url } = await startSim(t, {
    overrides: { ttftMs: { median: 100, p99: 250 }, tokensPerSecond: 10_000 },
  });

  const samples: number[] = [];
  for (let i = 0; i < 15; i += 1) samples.push(await timeToFirstChunk(url, `ttft ${i}`));

  const measured = median(samples);
  assert.ok(measured >= 50 && measured <= 400, `median ttft ${measured} ms`);
});

test('a non-stream answer waits for first token plus decode time, and timeScale 0 makes it instant', async (t) => {
  const slow = await startSim(t, {
    overrides: { ttftMs: { median: 50, p99: 50 }, tokensPerSecond: 100, outputTokens: { min: 20, max: 20 } },
  });
  const instant = await startSim(t, { profile: 'slow', overrides: { timeScale: 0 } });
  const body = JSON.stringify({ messages: userMessages('how long?') });

  let started = performance.now();
  await (await request(`${slow.url}/v1/chat/completions`, { method: 'POST', body })).body.text();
  const slowMs = performance.now() - started;
  started = performance.now();
  await (await request(`${instant.url}/v1/chat/completions`, { method: 'POST', body })).body.text();
  const instantMs = performance.now() - started;

  // 50 ms + 20 tokens at 100 tok/s = 250 ms.
  assert.ok(slowMs >= 200 && slowMs < 2000, `non-stream took ${slowMs} ms`);
  assert.ok(instantMs < 200, `timeScale 0 took ${instantMs} ms`);
});
