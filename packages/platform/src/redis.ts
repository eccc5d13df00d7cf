import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';

/**
 * A Redis connection suitable for BullMQ too (it requires `maxRetriesPerRequest: null`):
 * commands wait through a reconnect instead of failing the caller after a few tries.
 */
export function createRedis(url: string, name: string): Redis {
  return new Redis(url, { maxRetriesPerRequest: null, connectionName: name, enableReadyCheck: true });
}

/**
 * A Lua script sent by its SHA1 (`EVALSHA`) instead of its text: the join runs three per pair,
 * and with `EVAL` their text was most of the bytes ioredis wrote and Redis parsed and hashed.
 * A Redis that does not know the script (first use, restarted, `SCRIPT FLUSH`) answers NOSCRIPT,
 * and that one call is sent as `EVAL`, which loads it.
 */
export class RedisScript {
  readonly sha: string;

  constructor(readonly lua: string) {
    this.sha = createHash('sha1').update(lua).digest('hex');
  }

  /** Runs the script: the first `numberOfKeys` of `keysAndArgs` are its KEYS, the rest its ARGV. */
  async run(redis: Redis, numberOfKeys: number, ...keysAndArgs: Array<string | number>): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, numberOfKeys, ...keysAndArgs);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return redis.eval(this.lua, numberOfKeys, ...keysAndArgs);
    }
  }
}
