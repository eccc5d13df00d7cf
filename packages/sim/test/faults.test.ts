import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Agent, errors, request } from 'undici';
import { chat, sseData, startSim, userMessages, waitFor } from './helpers.js';

const body = { model: 'sim', messages: userMessages('Tell me about retries and backoff.') };
const fault = (name: string): { headers: Record<string, string> } => ({ headers: { 'x-sim-fault': name } });

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

test('a forced error answers 500 with an OpenAI server_error body', async (t) => {
  const { url, server } = await startSim(t, { overrides: { timeScale: 0 } });

  const result = await chat(url, body, fault('error'));

  assert.equal(result.status, 500);
  const parsed = JSON.parse(result.text) as { error: Record<string, unknown> };
  assert.equal(parsed.error['type'], 'server_error');
  assert.equal(typeof parsed.error['message'], 'string');
  assert.ok('param' in parsed.error && 'code' in parsed.error);
  assert.equal(server.stats().faults.error, 1);
});

test('a forced rate limit answers 429 with a Retry-After header and an error body', async (t) => {
  const { url } = await startSim(t, { overrides: { timeScale: 0, retryAfterSeconds: 3 } });

  const result = await chat(url, { ...body, stream: true }, fault('rate_limit'));

  assert.equal(result.status, 429);
  assert.equal(result.headers['retry-after'], '3');
  const parsed = JSON.parse(result.text) as { error: { code: string; message: string } };
  assert.equal(parsed.error.code, 'rate_limit_exceeded');
});

test('a forced truncation stops the stream without finish_reason or [DONE] and cuts a plain body mid-JSON', async (t) => {
  const { url } = await startSim(t, { overrides: { timeScale: 0, outputTokens: { min: 20, max: 20 } } });

  const streamed = await chat(url, { ...body, stream: true }, fault('truncate'));
  const plain = await chat(url, body, fault('truncate'));

  assert.equal(streamed.status, 200);
  const data = sseData(streamed.text);
  assert.ok(data.length >= 2, 'expected some chunks before the cut');
  assert.ok(!data.includes('[DONE]'));
  assert.ok(!streamed.text.includes('"finish_reason":"'), 'no chunk may carry a finish_reason');
  assert.ok(data.every(isJson), 'the chunks that were sent are whole');
  assert.equal(plain.status, 200);
  assert.ok(plain.text.startsWith('{"id":"chatcmpl-'));
  assert.ok(!isJson(plain.text));
});

test('truncate mode reset drops the connection mid-body', async (t) => {
  const { url } = await startSim(t, { overrides: { timeScale: 0, truncateMode: 'reset' } });

  const response = await request(`${url}/v1/chat/completions`, {
    method: 'POST',
    body: JSON.stringify({ ...body, stream: true }),
    headers: { 'x-sim-fault': 'truncate' },
  });

  assert.equal(response.statusCode, 200);
  await assert.rejects(response.body.text());
});

test('a forced malformed answer is a 200 whose body or one SSE data line is not JSON', async (t) => {
  const { url } = await startSim(t, { overrides: { timeScale: 0 } });

  const plain = await chat(url, body, fault('malformed'));
  const streamed = await chat(url, { ...body, stream: true }, fault('malformed'));

  assert.equal(plain.status, 200);
  assert.ok(!isJson(plain.text));
  assert.equal(streamed.status, 200);
  const broken = sseData(streamed.text).filter((data) => data !== '[DONE]' && !isJson(data));
  assert.equal(broken.length, 1);
});

test('a forced timeout never answers and close() still returns promptly', async (t) => {
  const { url, server } = await startSim(t, { overrides: { timeScale: 0 } });
  const agent = new Agent({ headersTimeout: 300 });
  t.after(() => agent.close());

  const started = Date.now();
  await assert.rejects(chat(url, body, { ...fault('timeout'), dispatcher: agent }), errors.HeadersTimeoutError);
  assert.ok(Date.now() - started >= 290);

  // The client gave up; the server notices and stops counting it as in flight.
  await waitFor(() => server.stats().aborted === 1 && server.stats().inFlight === 0, 2000, 'the abandoned request');

  // A second held request, still waiting when the server closes.
  const held = chat(url, body, fault('timeout')).then(
    () => 'answered',
    () => 'dropped',
  );
  await waitFor(() => server.stats().inFlight === 1, 2000, 'the held request to arrive');
  const closing = Date.now();
  await server.close();
  assert.ok(Date.now() - closing < 1000, `close took ${Date.now() - closing} ms`);
  assert.equal(await held, 'dropped');
  assert.equal(server.stats().inFlight, 0);
  assert.equal(server.stats().faults.timeout, 2);
});

test('an unknown x-sim-fault value is a 400 and "none" suppresses random faults', async (t) => {
  const { url } = await startSim(t, { overrides: { timeScale: 0, errorRate: 1 } });

  const bad = await chat(url, body, fault('explode'));
  const suppressed = await chat(url, body, fault('none'));
  const random = await chat(url, body);

  assert.equal(bad.status, 400);
  assert.equal((JSON.parse(bad.text) as { error: { param: string } }).error.param, 'x-sim-fault');
  assert.equal(suppressed.status, 200);
  assert.equal(random.status, 500);
});

test('random fault rates with a fault seed repeat the same sequence on a new server', async (t) => {
  const overrides = { timeScale: 0, errorRate: 0.3, rateLimitRate: 0.2, faultSeed: 'bench-1' } as const;
  const statuses = async (): Promise<number[]> => {
    const { url } = await startSim(t, { overrides });
    const result: number[] = [];
    for (let i = 0; i < 40; i += 1) result.push((await chat(url, body)).status);
    return result;
  };

  const first = await statuses();
  const second = await statuses();

  assert.deepEqual(first, second);
  assert.ok(first.includes(500) && first.includes(429) && first.includes(200), first.join(','));
});
