import type { Addresses } from '@shadow-replay/contracts';
import { parseBrokers } from './kafka.js';

/** Infrastructure addresses from an environment object (services pass `process.env` from config.ts). */
export function addressesFromEnv(env: Record<string, string | undefined>): Addresses {
  return {
    kafkaBrokers: parseBrokers(env.KAFKA_BROKERS ?? '127.0.0.1:9092'),
    redisUrl: env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    schemaRegistryUrl: env.SCHEMA_REGISTRY_URL,
  };
}
