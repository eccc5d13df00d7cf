import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chat, get, startSim, userMessages } from './helpers.js';

test('stats count 20 concurrent requests as 20 in flight at the peak and none after', async (t) => {
  // Every request is held 600 ms, so all 20 overlap however the event loop schedules them.
  const { url, server } = await startSim(t, {
    overrides: { ttftMs: { median: 600, p99: 600 }, tokensPerSecond: 1_000_000 },
  });

  const results = await Promise.all(
    Array.from({ length: 20 }, (_, i) => chat(url, { messages: userMessages(`concurrent ${i}`) })),
  );
  await get(`${url}/healthz`);
  const stats = server.stats();

  assert.ok(results.every((result) => result.status === 200));
  assert.equal(stats.maxInFlight, 20);
  assert.equal(stats.inFlight, 0);
  assert.equal(stats.requestsTotal, 20);
  assert.deepEqual(stats.byStatus, { '200': 20 });
  assert.equal(stats.otherRequests, 1);
  assert.equal(stats.arrivals.length, stats.windowSeconds);
  assert.equal(stats.arrivals.reduce((sum, second) => sum + second.count, 0), 20);
});

test('sequential requests never raise max in-flight above one and resetStats zeroes the counters', async (t) => {
  const { url, server } = await startSim(t, { overrides: { timeScale: 0 }, statsWindowSeconds: 5 });

  for (let i = 0; i < 5; i += 1) await chat(url, { messages: userMessages(`one at a time ${i}`) });
  const before = server.stats();
  server.resetStats();
  const after = server.stats();

  assert.equal(before.maxInFlight, 1);
  assert.equal(before.requestsTotal, 5);
  assert.equal(before.arrivals.length, 5);
  assert.equal(after.requestsTotal, 0);
  assert.equal(after.maxInFlight, 0);
  assert.deepEqual(after.byStatus, {});
});
