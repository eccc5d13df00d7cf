#!/usr/bin/env node
// `npm run demo`: installs and builds when needed, brings up the local Kafka, schema registry
// and Redis when they are not running, runs `shadow-replay demo`, and stops what it started.
// Extra arguments go to `shadow-replay demo` (e.g. `npm run demo -- --requests 500`);
// `--keep-infra` leaves the infrastructure running for the next run.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const args = process.argv.slice(2);
const keepInfra = args.includes('--keep-infra');
const demoArgs = args.filter((arg) => arg !== '--keep-infra');

if (args.includes('--help') || args.includes('-h')) {
  process.stdout.write('Usage: npm run demo [-- --requests N] [--out DIR] [--keep-infra]\n\nRuns the whole pipeline with simulated models on local Kafka and Redis, writes DIR/report.json, report.md and report.html (default demo-out).\n');
  process.exit(0);
}

function step(title, command, commandArgs) {
  process.stdout.write(`» ${title}\n`);
  const result = spawnSync(command, commandArgs, { cwd: root, stdio: 'inherit', env: process.env });
  if (result.status !== 0) {
    process.stderr.write(`demo: "${command} ${commandArgs.join(' ')}" failed (exit ${result.status ?? result.signal}).\n`);
    process.exit(result.status ?? 1);
  }
}

if (!existsSync(`${root}/node_modules/kafkajs`)) step('installing dependencies (npm install)', 'npm', ['install', '--no-audit', '--no-fund']);
step('building (tsc -b)', 'npx', ['tsc', '-b']);

const { infraUp, infraDown } = await import('./infra.mjs');
process.stdout.write('» local infrastructure (Kafka, schema registry, Redis)\n');
let infra;
try {
  infra = await infraUp({});
} catch (error) {
  process.stderr.write(`demo: could not bring up the infrastructure:\n${error.message}\nSee README "Local infrastructure", or point KAFKA_BROKERS/REDIS_URL at your own.\n`);
  process.exit(1);
}
// Redis is the machine's and stays; Kafka and the registry are stopped if this run started them.
const startedSomething = (infra.started ?? []).some((name) => name === 'kafka' || name === 'schemaRegistry');

const demo = spawnSync(process.execPath, ['services/cli/bin/shadow-replay.js', 'demo', ...demoArgs], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, ...infra.env, KAFKAJS_NO_PARTITIONER_WARNING: '1' },
});

if (startedSomething && !keepInfra) {
  process.stdout.write('» stopping the infrastructure this demo started (use --keep-infra to keep it)\n');
  await infraDown({});
}
process.exit(demo.status ?? 1);
