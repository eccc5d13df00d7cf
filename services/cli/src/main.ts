import { parseArgs } from 'node:util';
import { renderPairsJsonl } from '@shadow-replay/evaluation';
import { main as runEvaluator } from '@shadow-replay/evaluator';
import { main as runGateway } from '@shadow-replay/gateway';
import { main as runJoin } from '@shadow-replay/join';
import { createLogger, runUntilSignal } from '@shadow-replay/platform';
import { main as runReplay } from '@shadow-replay/replay';
import { runSimCli } from '@shadow-replay/sim';
import { runDemo } from './demo-command.js';
import { Pipeline } from './pipeline.js';
import { runWindow } from './window-command.js';
import { ReportFormat, loadExperimentReport, renderReport, writeOut } from './report-command.js';
import { addresses, allSettings, cliEnv, loadConfig } from './settings.js';

const USAGE = `shadow-replay — asynchronous shadow deployment of LLMs over Kafka

Usage:
  shadow-replay gateway|replay|join|evaluator --config FILE   run one service
  shadow-replay replay --config FILE --from ISO --to ISO [--speed X | --rate RPS]
                                                              replay a historical window, then exit
  shadow-replay all --config FILE                             all four services in one process
  shadow-replay report --experiment ID [--config FILE] [--from ISO --to ISO]
                       [--format json|md|html] [--out FILE]
                       [--pairs FILE]                         the experiment's report
  shadow-replay validate --config FILE                        check a configuration
  shadow-replay sim [--port N] [--profile NAME]               simulated OpenAI-compatible model
  shadow-replay demo [--requests N] [--out DIR]               the whole pipeline with simulated models

Addresses come from the environment: KAFKA_BROKERS (default 127.0.0.1:9092),
REDIS_URL (default redis://127.0.0.1:6379), SCHEMA_REGISTRY_URL.
Run \`shadow-replay COMMAND --help\` for a command's options.
`;

const HELP: Record<string, string> = {
  service: 'Usage: shadow-replay gateway|replay|join|evaluator|all --config FILE\n\nRuns until SIGTERM/SIGINT, then drains and exits 0. Logs JSON lines (LOG_LEVEL=debug|info|warn).\n',
  report:
    'Usage: shadow-replay report --experiment ID [--config FILE] [--from ISO] [--to ISO] [--format json|md|html] [--out FILE] [--pairs FILE]\n\n' +
    'Reads the evaluation records and outcome counters of one experiment and prints (or writes) its report.\n' +
    '  --from/--to ISO        only the requests that occurred in [from, to), widened to whole minutes: records by\n' +
    '                         the request time they carry, outcome counters from their per-minute buckets, so a\n' +
    '                         drained window balances. Either end may be left open.\n' +
    '  --format json|md|html  json: the report of DESIGN §5; md: Markdown; html: one self-contained page with\n' +
    '                         plots (no script, nothing fetched; open it offline). Default md.\n' +
    '  --out FILE             write the report to FILE instead of standard output.\n' +
    '  --pairs FILE           also write every evaluated pair as JSON Lines for human review: one object per\n' +
    '                         line with requestId, arm, both sides\' figures, deltas, comparison metrics and\n' +
    '                         the first 2,000 characters of both answers (excerpts).\n' +
    '  --config FILE          topic names and the Redis key prefix when they are not the defaults.\n',
  replay:
    'Usage: shadow-replay replay --config FILE                       tap live traffic until SIGTERM\n       shadow-replay replay --config FILE --from ISO --to ISO [--speed X | --rate RPS] [--experiment ID]\n\nWith --from/--to, replays the requests whose record timestamps are in [from, to) (reading on for records\nwritten up to replay.windowLateMs after the end) to the candidates under its own experiment id\n(default <experiment>-w<from>-<to>) and consumer group, shows progress, and exits 0 with a summary.\n--speed X replays at the recorded inter-arrival times divided by X; --rate RPS at a fixed rate (overrides the arms\' rps).\nThe stable answers of the window are loaded for the join; run join and evaluator as usual, then `report`.\n',
  validate: 'Usage: shadow-replay validate --config FILE\n\nChecks a configuration; every problem is printed with its field path. Exit 0 when valid, 1 otherwise.\n',
  demo: 'Usage: shadow-replay demo [--requests N] [--out DIR] [--concurrency N]\n\nRuns gateway, replay, join and evaluator against simulated models on the local Kafka and Redis,\nsends N requests (default 400, enough for a p99 interval), waits until all are accounted for and writes DIR/report.json, .md and\n.html (default demo-out).\n',
};

/** Runs the `shadow-replay` command; returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const print = (line: string) => process.stdout.write(`${line}\n`);
  try {
    switch (command) {
      case 'gateway':
      case 'replay':
      case 'join':
      case 'evaluator':
      case 'all':
        return await serviceCommand(command, rest);
      case 'report':
        return await reportCommand(rest, print);
      case 'validate':
        return await validateCommand(rest, print);
      case 'sim':
        return await runSimCli(rest);
      case 'demo':
        return await demoCommand(rest, print);
      case undefined:
      case '-h':
      case '--help':
      case 'help':
        process.stdout.write(USAGE);
        return command === undefined ? 2 : 0;
      default:
        process.stderr.write(`shadow-replay: unknown command "${command}"\n\n${USAGE}`);
        return 2;
    }
  } catch (error) {
    process.stderr.write(`shadow-replay ${command ?? ''}: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
}

async function serviceCommand(command: string, argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string', short: 'c' },
      help: { type: 'boolean', short: 'h' },
      from: { type: 'string' },
      to: { type: 'string' },
      speed: { type: 'string' },
      rate: { type: 'string' },
      experiment: { type: 'string' },
    },
  });
  if (values.help === true) return help(command === 'replay' ? 'replay' : 'service');
  if (values.config === undefined) throw new Error('--config FILE is required (see --help)');
  if (values.from !== undefined || values.to !== undefined) {
    if (command !== 'replay') throw new Error('--from/--to belong to `shadow-replay replay`');
    return windowCommand(values.config, values);
  }
  const runners: Record<string, (file: string) => Promise<void>> = { gateway: runGateway, replay: runReplay, join: runJoin, evaluator: runEvaluator };
  const runner = runners[command];
  if (runner !== undefined) {
    await runner(values.config);
    return 0;
  }
  const config = await loadConfig(values.config);
  const log = createLogger('shadow-replay', { level: cliEnv().LOG_LEVEL ?? 'info' });
  await runUntilSignal(new Pipeline(config, log), log);
  return 0;
}

async function windowCommand(configFile: string, values: { from?: string | undefined; to?: string | undefined; speed?: string | undefined; rate?: string | undefined; experiment?: string | undefined }): Promise<number> {
  const from = parseTime('--from', values.from);
  const to = parseTime('--to', values.to);
  if (from === undefined || to === undefined) throw new Error('a window needs both --from and --to (ISO times)');
  if (values.speed !== undefined && values.rate !== undefined) throw new Error('choose one pacing: --speed X (recorded inter-arrival times ÷ X) or --rate RPS');
  const speed = values.speed === undefined ? undefined : positiveNumber('--speed', values.speed);
  const rate = values.rate === undefined ? undefined : positiveNumber('--rate', values.rate);
  const print = (line: string) => process.stdout.write(`${line}\n`);
  const summary = await runWindow({
    config: await loadConfig(configFile),
    from,
    to,
    speed,
    rate,
    experimentId: values.experiment,
    log: createLogger('replay-window', { level: cliEnv().LOG_LEVEL ?? 'warn' }),
    print,
    progress: (line, final) => {
      if (process.stdout.isTTY) process.stdout.write(`\r${line}${final ? '\n' : ''}`);
      else print(line);
    },
  });
  print(`replayed the window's ${summary.handled} requests in ${summary.seconds.toFixed(1)} s (experiment ${summary.experimentId})`);
  print(
    `  ${summary.handled + summary.outside} records read, ${summary.outside} of them with timestamps outside the window (left alone); ${summary.skipped} offsets skipped (transaction markers, aborted or compacted records)`,
  );
  for (const [arm, counts] of Object.entries(summary.outcomes)) {
    const parts = Object.entries(counts).filter(([, n]) => n > 0).map(([name, n]) => `${name} ${n}`);
    print(`  ${arm}: ${parts.join(', ')}`);
  }
  print(`pairs are joined and evaluated by the running join and evaluator; then: shadow-replay report --experiment ${summary.experimentId} --config ${configFile}`);
  return 0;
}

async function reportCommand(argv: string[], print: (line: string) => void): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      experiment: { type: 'string', short: 'e' },
      config: { type: 'string', short: 'c' },
      from: { type: 'string' },
      to: { type: 'string' },
      format: { type: 'string', default: 'md' },
      out: { type: 'string', short: 'o' },
      pairs: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help === true) return help('report');
  if (values.experiment === undefined) throw new Error('--experiment ID is required (see --help)');
  const format = values.format ?? 'md';
  if (!Object.values(ReportFormat).includes(format as ReportFormat)) throw new Error(`--format must be json, md or html (got "${format}")`);
  const config = values.config === undefined ? undefined : await loadConfig(values.config);
  const { report, records } = await loadExperimentReport({
    experimentId: values.experiment,
    from: parseTime('--from', values.from),
    to: parseTime('--to', values.to),
    topics: config?.kafka.topics ?? (await defaultTopics()),
    keyPrefix: config?.redis.keyPrefix ?? 'shadow',
    gates: config?.experiment?.verdict,
    controlArm: config?.experiment?.candidates.find((candidate) => candidate.control)?.name,
    addresses: addresses(),
    log: createLogger('report', { level: cliEnv().LOG_LEVEL ?? 'warn' }),
  });
  const text = renderReport(report, format as ReportFormat);
  if (values.out === undefined) process.stdout.write(text);
  else {
    await writeOut(values.out, text);
    print(`report written to ${values.out} (conservation ${report.conservation.balanced ? 'balanced' : 'NOT balanced'})`);
  }
  if (values.pairs !== undefined) {
    await writeOut(values.pairs, renderPairsJsonl(records));
    // With the report on standard output, the note goes to standard error so the output stays one document.
    const note = `pairs written to ${values.pairs} (${records.length} line(s))`;
    if (values.out === undefined) process.stderr.write(`${note}\n`);
    else print(note);
  }
  return 0;
}

async function validateCommand(argv: string[], print: (line: string) => void): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help === true) return help('validate');
  if (values.config === undefined) throw new Error('--config FILE is required (see --help)');
  const config = await loadConfig(values.config);
  const parts = ['join', 'evaluator'];
  if (config.gateway !== undefined) parts.unshift('gateway');
  if (config.experiment !== undefined) {
    parts.splice(1, 0, 'replay');
    allSettings(config);
  }
  print(`${values.config}: valid (${parts.join(', ')})`);
  return 0;
}

async function demoCommand(argv: string[], print: (line: string) => void): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { requests: { type: 'string', default: '400' }, out: { type: 'string', default: 'demo-out' }, concurrency: { type: 'string', default: '16' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help === true) return help('demo');
  const requests = positiveInt('--requests', values.requests);
  const concurrency = positiveInt('--concurrency', values.concurrency);
  return runDemo({ requests, concurrency, out: values.out ?? 'demo-out', print, log: createLogger('demo', { level: cliEnv().LOG_LEVEL ?? 'warn' }) });
}

async function defaultTopics() {
  const { TopicsConfigSchema } = await import('@shadow-replay/contracts');
  return TopicsConfigSchema.parse(undefined);
}

function help(name: string): number {
  process.stdout.write(HELP[name] ?? USAGE);
  return 0;
}

function positiveNumber(flag: string, value: string): number {
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed <= 0) throw new Error(`${flag} must be a positive number (got "${value}")`);
  return parsed;
}

function positiveInt(flag: string, value: string | undefined): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed <= 0) throw new Error(`${flag} must be a positive whole number (got "${value ?? ''}")`);
  return parsed;
}

function parseTime(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const time = Date.parse(value);
  if (Number.isNaN(time)) throw new Error(`${flag} must be an ISO time such as 2026-11-28T10:00:00Z (got "${value}")`);
  return time;
}
