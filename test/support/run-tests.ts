/**
 * `npm test`: finds Kafka, Redis and a schema registry (DESIGN §7: environment variables,
 * else Testcontainers when a Docker engine answers, else the local infrastructure script),
 * then runs every test file with Node's test runner against them.
 */
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findTestServices, type TestServices } from './find-services.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const unitOnly = process.argv.includes('--unit');
const filters = process.argv.slice(2).filter((arg) => !arg.startsWith('--'));
/** Per test and per suite. */
const TEST_TIMEOUT_MS = 10 * 60_000;

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

async function run(): Promise<number> {
  const files = testFiles();
  if (files.length === 0) {
    process.stderr.write('no test files matched\n');
    return 1;
  }
  let services: TestServices | undefined;
  if (!unitOnly) {
    services = await findTestServices();
    process.stdout.write(`tests use ${services.source}: KAFKA_BROKERS=${services.KAFKA_BROKERS} REDIS_URL=${services.REDIS_URL} SCHEMA_REGISTRY_URL=${services.SCHEMA_REGISTRY_URL}\n`);
  }
  const env = { ...process.env, KAFKAJS_NO_PARTITIONER_WARNING: '1', LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent' };
  if (services) Object.assign(env, { KAFKA_BROKERS: services.KAFKA_BROKERS, REDIS_URL: services.REDIS_URL, SCHEMA_REGISTRY_URL: services.SCHEMA_REGISTRY_URL });
  // A safety bound, not a timing assertion: the slowest suite (the fuzz suite) takes about 80 s here;
  // a request that never gets an answer fails its test after 10 minutes instead of holding CI.
  const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', '--test', '--test-concurrency=1', `--test-timeout=${TEST_TIMEOUT_MS}`, '--test-reporter=spec', ...files], { cwd: root, env, stdio: 'inherit' });
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
