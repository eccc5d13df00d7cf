import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Agent } from 'undici';
import { createSimServer, isSimError, SimErrorCode } from '../src/index.js';
import { chat, startSim, userMessages, waitFor } from './helpers.js';

test('close() returns the same promise to every caller and start() after close is refused', async () => {
  const server = createSimServer({ port: 0 });
  const { url } = await server.start();

  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.equal(server.url, url);
  const first = server.close();
  assert.equal(server.close(), first);
  await first;
  await assert.rejects(server.start(), (error: unknown) => isSimError(error, SimErrorCode.Closed));
});

test('close() cuts an in-flight stream and idle keep-alive connections promptly', async (t) => {
  const { url, server } = await startSim(t, {
    overrides: { ttftMs: { median: 0, p99: 0 }, tokensPerSecond: 2, outputTokens: { min: 100, max: 100 } },
  });
  const agent = new Agent({ keepAliveTimeout: 60_000 });
  t.after(() => agent.close());

  // An idle keep-alive connection from a finished request…
  await chat(url, { messages: userMessages('warm up') }, { dispatcher: agent, headers: { 'x-sim-fault': 'error' } });
  // …and a stream that would take 50 s to finish.
  const stream = chat(url, { messages: userMessages('long stream'), stream: true }, { dispatcher: agent }).then(
    () => 'finished',
    () => 'cut',
  );
  await waitFor(() => server.stats().inFlight === 1, 2000, 'the stream to start');

  const started = Date.now();
  await server.close();

  assert.ok(Date.now() - started < 1000, `close took ${Date.now() - started} ms`);
  assert.equal(await stream, 'cut');
});

test('a listen failure is a retryable SIM_LISTEN_FAILED error and start() can be retried', async (t) => {
  const { url, server: first } = await startSim(t);
  const port = Number(new URL(url).port);
  const second = createSimServer({ port });
  t.after(() => second.close());

  await assert.rejects(second.start(), (error: unknown) => isSimError(error, SimErrorCode.ListenFailed) && error.retryable);
  await first.close();
  assert.equal((await second.start()).url, url);
});
