import { Redis } from 'ioredis';

/**
 * A Redis connection suitable for BullMQ too (it requires `maxRetriesPerRequest: null`):
 * commands wait through a reconnect instead of failing the caller after a few tries.
 */
export function createRedis(url: string, name: string): Redis {
  return new Redis(url, { maxRetriesPerRequest: null, connectionName: name, enableReadyCheck: true });
}
