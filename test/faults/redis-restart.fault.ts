import assert from 'node:assert/strict';
import { mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { waitFor } from '@shadow-replay/platform';
import { FaultPipeline, drawPoints, faultRequests, faultSeed, finishCase } from '../support/fault-pipeline.js';
import { RedisServerProcess, freePort } from '../support/service-process.js';

const RESTARTS = 2;

/**
 * How Redis goes down (`FAULT_REDIS_SIGNAL`): `SIGTERM` is a clean shutdown (Redis fsyncs the
 * append-only file and exits); `SIGKILL` a crash of the Redis process alone, which loses
 * nothing acknowledged either, because Redis writes the AOF before it replies and the kernel
 * keeps what was written. `FAULT_REDIS_LOSE_S` (with SIGKILL) also cuts the AOF's last seconds
 * off before the restart, as an OS crash or power loss does with `appendfsync everysec`.
 * `FAULT_REDIS_AOF=no` runs Redis without any persistence, so every restart starts it empty.
 * The suite's case is the clean restart; the others are experiments (docs/reliability.md).
 */
function redisFault(): { signal: 'SIGTERM' | 'SIGKILL'; loseSeconds: number; persistent: boolean } {
  const signal = process.env.FAULT_REDIS_SIGNAL ?? 'SIGTERM';
  if (signal !== 'SIGTERM' && signal !== 'SIGKILL') throw new Error(`FAULT_REDIS_SIGNAL must be SIGTERM or SIGKILL (got "${signal}")`);
  const loseSeconds = Number(process.env.FAULT_REDIS_LOSE_S ?? '0');
  if (!Number.isInteger(loseSeconds) || loseSeconds < 0) throw new Error(`FAULT_REDIS_LOSE_S must be a whole number of seconds (got "${process.env.FAULT_REDIS_LOSE_S}")`);
  if (loseSeconds > 0 && signal !== 'SIGKILL') throw new Error('FAULT_REDIS_LOSE_S needs FAULT_REDIS_SIGNAL=SIGKILL: a clean shutdown loses nothing');
  const aof = process.env.FAULT_REDIS_AOF ?? 'yes';
  if (aof !== 'yes' && aof !== 'no') throw new Error(`FAULT_REDIS_AOF must be yes or no (got "${aof}")`);
  return { signal, loseSeconds, persistent: aof === 'yes' };
}

async function restartRedis(t: TestContext, { signal, loseSeconds, persistent }: ReturnType<typeof redisFault>): Promise<void> {
  const requests = faultRequests();
  const seed = faultSeed();
  const points = drawPoints(seed, RESTARTS, requests, 0.1, 0.8);
  const lost = loseSeconds > 0 ? `, the AOF's last ${loseSeconds} s cut off,` : '';
  const kind = persistent ? 'AOF, appendfsync everysec' : 'no persistence';
  t.diagnostic(`FAULT_SEED=${seed}: ${signal}${lost} and restart of Redis (${kind}) when replay consumed ${points.join(', ')} of ${requests}`);

  const dir = join(tmpdir(), 'shadow-replay-faults', `redis-${process.pid}-${Date.now().toString(36)}`);
  mkdirSync(dir, { recursive: true });
  const redis = new RedisServerProcess({ port: await freePort(), dir, logFile: join(dir, 'redis-server.log'), appendonly: persistent });
  let pipeline: FaultPipeline;
  try {
    await redis.start();
    pipeline = await FaultPipeline.start(t, { redisUrl: redis.url });
  } finally {
    // Registered after the pipeline's cleanup, which still talks to this Redis.
    t.after(() => {
      redis.destroy();
      rmSync(dir, { recursive: true, force: true });
    });
  }
  pipeline.note(`redis-server ${redis.url}, data in ${dir}`);

  const restartedAt: number[] = [];
  const downtimes: number[] = [];
  const restarter = async () => {
    for (const point of points) {
      await waitFor(async () => (await pipeline.counts()).consumed >= point, { timeoutMs: 120_000 + requests * 20, intervalMs: 50, what: `replay to consume ${point} requests` });
      const at = (await pipeline.counts()).consumed;
      const started = Date.now();
      pipeline.note(`${signal} redis at ${at} consumed`);
      await redis.stop(signal);
      if (loseSeconds > 0) pipeline.note(await redis.truncateAof(Math.floor(Date.now() / 1000) - loseSeconds));
      await redis.start();
      downtimes.push(Date.now() - started);
      restartedAt.push(at);
      pipeline.note(`redis back after ${Date.now() - started} ms`);
    }
  };
  const [traffic, restartFailure] = await Promise.all([pipeline.traffic(requests), restarter().then(() => undefined, (error: unknown) => (error instanceof Error ? error : new Error(String(error))))]);
  const observation = await finishCase(
    t,
    pipeline,
    `Redis${persistent ? '' : ' (no persistence)'} ${signal}${loseSeconds > 0 ? ` −${loseSeconds} s` : ''} + restart ×${RESTARTS}`,
    { requests, ok: traffic.ok, failed: traffic.failed },
    () => ({ seed, 'restarted at': restartedAt.join('/'), 'down ms': downtimes.join('/') }),
    restartFailure,
  );
  assert.equal(redis.restarts, RESTARTS);
  assert.equal(traffic.failed, 0, 'users never notice the shadow pipeline losing its Redis');
  assert.equal(observation.gateway.droppedTotal, 0, 'the gateway does not use Redis and dropped nothing');
  assert.equal(observation.published, requests, 'every request reached the request topic');
  assert.deepEqual(observation.crashes, [], 'no service exits because Redis went away');
  assert.equal(observation.counts.evaluated, requests, `every request evaluated exactly once despite ${RESTARTS} Redis restarts`);
  pipeline.passed();
}

describe('Redis (append-only file on) restarts mid-run', () => {
  const fault = redisFault();
  it(`${fault.signal}: every request is evaluated exactly once and the conservation table balances`, (t) => restartRedis(t, fault));
});
