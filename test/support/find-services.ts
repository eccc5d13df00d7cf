/**
 * Finds Kafka, Redis and a schema registry for a test run (DESIGN §7): the environment
 * variables when set, else Testcontainers when a Docker engine answers, else the local
 * infrastructure script. The same order as `npm test` (test/support/run-tests.ts), as a module
 * other runners (`npm run test:faults`) can import.
 */
import { spawnSync } from 'node:child_process';

export interface TestServices {
  KAFKA_BROKERS: string;
  REDIS_URL: string;
  SCHEMA_REGISTRY_URL: string;
  source: string;
  stop?: () => Promise<void>;
}

export async function findTestServices(): Promise<TestServices> {
  const env = process.env;
  if (env.KAFKA_BROKERS && env.REDIS_URL && env.SCHEMA_REGISTRY_URL) {
    return { KAFKA_BROKERS: env.KAFKA_BROKERS, REDIS_URL: env.REDIS_URL, SCHEMA_REGISTRY_URL: env.SCHEMA_REGISTRY_URL, source: 'environment variables' };
  }
  if (dockerAnswers()) return startContainers();
  const infra = (await import(new URL('../../scripts/infra.mjs', import.meta.url).href)) as {
    infraUp: (options: { quiet?: boolean }) => Promise<{ env: { KAFKA_BROKERS: string; REDIS_URL: string; SCHEMA_REGISTRY_URL: string } }>;
  };
  try {
    const { env: up } = await infra.infraUp({ quiet: false });
    return { KAFKA_BROKERS: up.KAFKA_BROKERS, REDIS_URL: up.REDIS_URL, SCHEMA_REGISTRY_URL: up.SCHEMA_REGISTRY_URL, source: 'local infrastructure (npm run infra:up)' };
  } catch (error) {
    throw new Error(
      [
        'no Kafka, Redis and schema registry for the tests:',
        `  local infrastructure failed: ${error instanceof Error ? error.message : String(error)}`,
        'Do one of:',
        '  - npm run infra:up            (needs Java and Maven; see README "Local infrastructure")',
        '  - start a Docker engine       (Testcontainers starts Kafka, Redis and Apicurio)',
        '  - export KAFKA_BROKERS=… REDIS_URL=… SCHEMA_REGISTRY_URL=…   (your own services)',
      ].join('\n'),
    );
  }
}

function dockerAnswers(): boolean {
  const result = spawnSync('docker', ['info', '--format', '{{.ServerVersion}}'], { stdio: 'ignore', timeout: 5_000 });
  return result.status === 0;
}

async function startContainers(): Promise<TestServices> {
  const { GenericContainer, Wait } = await import('testcontainers');
  const { KafkaContainer } = await import('@testcontainers/kafka');
  const { RedisContainer } = await import('@testcontainers/redis');
  const kafka = await new KafkaContainer('confluentinc/cp-kafka:7.9.0').withKraft().start();
  const redis = await new RedisContainer('redis:7-alpine').start();
  const registry = await new GenericContainer('apicurio/apicurio-registry:3.0.9')
    .withExposedPorts(8080)
    .withWaitStrategy(Wait.forHttp('/apis/ccompat/v7/subjects', 8080))
    .start();
  return {
    KAFKA_BROKERS: `${kafka.getHost()}:${kafka.getMappedPort(9093)}`,
    REDIS_URL: redis.getConnectionUrl(),
    SCHEMA_REGISTRY_URL: `http://${registry.getHost()}:${registry.getMappedPort(8080)}/apis/ccompat/v7`,
    source: 'Testcontainers',
    stop: async () => {
      await Promise.allSettled([kafka.stop(), redis.stop(), registry.stop()]);
    },
  };
}
