/**
 * `npm run test:faults [-- FILTER…]`: finds Kafka, Redis and a schema registry the way
 * `npm test` does, runs the fault cases (test/faults/*.fault.ts, kept out of `npm test`
 * because they kill processes, restart the broker and take minutes) with Node's test runner,
 * then prints one table of every case.
 *
 * Environment: FAULT_REQUESTS (default 5000), FAULT_SEED (reproduces a run's random moments),
 * FAULT_CONCURRENCY (user connections, default 16), FAULT_DRAIN_TIMEOUT_MS,
 * FAULT_LOG_LEVEL (the services' log level, default warn; logs of a failed case are kept);
 * for `redis-restart`: FAULT_REDIS_SIGNAL (SIGTERM, the default, or SIGKILL), FAULT_REDIS_LOSE_S
 * (with SIGKILL: seconds cut off the AOF's end, as an OS crash loses them) and FAULT_REDIS_AOF=no
 * (a Redis without persistence) — the last two are experiments that show what breaks.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatTable } from '../support/fault-pipeline.js';
import { findTestServices, type TestServices } from '../support/find-services.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const here = fileURLToPath(new URL('.', import.meta.url));
const filters = process.argv.slice(2).filter((arg) => !arg.startsWith('--'));

function faultFiles(): string[] {
  return readdirSync(here)
    .filter((name) => name.endsWith('.fault.ts'))
    .map((name) => relative(root, join(here, name)))
    .filter((file) => filters.length === 0 || filters.some((filter) => file.includes(filter)))
    .sort();
}

function printSummary(file: string): void {
  if (!existsSync(file)) return;
  const rows = readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as Record<string, string | number>);
  rmSync(file, { force: true });
  if (rows.length === 0) return;
  // Only the columns every case has; case-specific ones were printed with the case.
  const common = Object.keys(rows[0] ?? {}).filter((column) => rows.every((row) => column in row));
  const table = formatTable(rows.map((row) => Object.fromEntries(common.map((column) => [column, row[column] ?? '']))));
  process.stdout.write(`\nfault suite (FAULT_REQUESTS=${process.env.FAULT_REQUESTS ?? '5000'})\n${table.join('\n')}\n`);
}

async function run(): Promise<number> {
  const files = faultFiles();
  if (files.length === 0) {
    process.stderr.write(`no fault cases matched ${filters.join(' ')}\n`);
    return 1;
  }
  const services: TestServices = await findTestServices();
  process.stdout.write(`fault cases use ${services.source}: KAFKA_BROKERS=${services.KAFKA_BROKERS} REDIS_URL=${services.REDIS_URL} SCHEMA_REGISTRY_URL=${services.SCHEMA_REGISTRY_URL}\n`);
  const results = join(tmpdir(), `shadow-replay-faults-${process.pid}.jsonl`);
  const env = {
    ...process.env,
    KAFKAJS_NO_PARTITIONER_WARNING: '1',
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent',
    KAFKA_BROKERS: services.KAFKA_BROKERS,
    REDIS_URL: services.REDIS_URL,
    SCHEMA_REGISTRY_URL: services.SCHEMA_REGISTRY_URL,
    FAULT_RESULTS_FILE: results,
  };
  const started = Date.now();
  // A second reporter, to a file, tells whether a case was skipped (e.g. the broker is not ours to restart).
  const tap = join(tmpdir(), `shadow-replay-faults-${process.pid}.tap`);
  const child = spawn(
    process.execPath,
    ['--conditions=source', '--import', 'tsx', '--test', '--test-concurrency=1', '--test-reporter=spec', '--test-reporter-destination=stdout', '--test-reporter=tap', `--test-reporter-destination=${tap}`, ...files],
    { cwd: root, env, stdio: 'inherit' },
  );
  const forward = (signal: NodeJS.Signals) => child.kill(signal);
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  const code = await new Promise<number>((resolve) => child.on('exit', (status, signal) => resolve(status ?? (signal ? 1 : 0))));
  printSummary(results);
  process.stdout.write(`fault suite took ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
  await services.stop?.();
  const skipped = existsSync(tap) ? Number(/^# skipped (\d+)$/mu.exec(readFileSync(tap, 'utf8'))?.[1] ?? 0) : 0;
  rmSync(tap, { force: true });
  if (skipped > 0) {
    // A skipped fault case proves nothing: the suite fails, with the reasons printed above.
    process.stderr.write(`${skipped} fault case(s) skipped (see the reasons above); a skipped case is not a pass. Run the suite where it can do everything it needs (e.g. \`npm run infra:down\` first, so it starts a broker of its own).\n`);
    return code === 0 ? 1 : code;
  }
  return code;
}

run().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
