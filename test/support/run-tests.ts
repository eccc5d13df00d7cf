/**
 * `npm test`: finds Kafka, Redis and a schema registry (DESIGN §7: environment variables,
 * else Testcontainers when a Docker engine answers, else the local infrastructure script),
 * then runs every test file with Node's test runner against them.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const unitOnly = process.argv.includes('--unit');
const filters = process.argv.slice(2).filter((arg) => !arg.startsWith('--'));

interface Services {
  KAFKA_BROKERS: string;
  REDIS_URL: string;
  SCHEMA_REGISTRY_URL: string;
  source: string;
  stop?: () => Promise<void>;
}

function testFiles(): string[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      if (name === 'node_modules' || name === 'dist' || name.startsWith('.')) continue;
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (name.endsWith('.test.ts')) found.push(relative(root, path));
    }
  };
  for (const base of unitOnly ? ['packages'] : ['packages', 'services', 'test']) walk(join(root, base));
  return found.filter((file) => filters.length === 0 || filters.some((filter) => file.includes(filter))).sort();
}

async function discover(): Promise<Services> {
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

async function startContainers(): Promise<Services> {
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

async function run(): Promise<number> {
  const files = testFiles();
  if (files.length === 0) {
    process.stderr.write('no test files matched\n');
    return 1;
  }
  let services: Services | undefined;
  if (!unitOnly) {
    services = await discover();
    process.stdout.write(`tests use ${services.source}: KAFKA_BROKERS=${services.KAFKA_BROKERS} REDIS_URL=${services.REDIS_URL} SCHEMA_REGISTRY_URL=${services.SCHEMA_REGISTRY_URL}\n`);
  }
  const env = { ...process.env, KAFKAJS_NO_PARTITIONER_WARNING: '1', LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent' };
  if (services) Object.assign(env, { KAFKA_BROKERS: services.KAFKA_BROKERS, REDIS_URL: services.REDIS_URL, SCHEMA_REGISTRY_URL: services.SCHEMA_REGISTRY_URL });
  const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', '--test', '--test-concurrency=1', '--test-reporter=spec', ...files], { cwd: root, env, stdio: 'inherit' });
  const code = await new Promise<number>((resolve) => child.on('exit', (status, signal) => resolve(status ?? (signal ? 1 : 0))));
  await services?.stop?.();
  return code;
}

run().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
