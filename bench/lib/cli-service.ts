/**
 * A shadow-replay service run the way users run it (`shadow-replay <service> --config FILE`,
 * the CLI's `main`, from source with tsx) in an OS process of its own, with its pino log in a
 * file: the benchmark measures it from outside, over HTTP and its `/metrics`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from '@shadow-replay/platform';
import { request } from 'undici';
import { stringify } from 'yaml';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const READY_TIMEOUT_MS = 60_000;
const STOP_DEADLINE_MS = 30_000;

/** A free TCP port on loopback (for a service's `listen` address; the OS could hand it out again before it is used, rarely). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('no free port');
  return address.port;
}

export interface CliServiceOptions {
  service: 'gateway' | 'replay' | 'join';
  /** The whole configuration; written as YAML next to the log. */
  config: unknown;
  /** The port the configuration gives this service's `listen` address. */
  port: number;
  /** KAFKA_BROKERS, REDIS_URL, LOG_LEVEL… (added to this process's environment). */
  env: Record<string, string>;
  /** Directory for `<service>.yaml` and `<service>.log`. */
  dir: string;
  /** Extra options for node, e.g. `--cpu-prof`. */
  nodeArgs?: string[];
}

export class CliService {
  readonly service: CliServiceOptions['service'];
  readonly url: string;
  readonly logFile: string;
  readonly #child: ChildProcess;
  readonly #exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #stderrTail = '';
  #stopping: Promise<number | null> | undefined;

  private constructor(options: CliServiceOptions, child: ChildProcess, logFile: string) {
    this.service = options.service;
    this.url = `http://127.0.0.1:${options.port}`;
    this.logFile = logFile;
    this.#child = child;
    this.#exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    child.stderr?.on('data', (chunk: Buffer) => {
      this.#stderrTail = (this.#stderrTail + chunk.toString('utf8')).slice(-4_096);
    });
  }

  /** Writes the configuration, spawns the service and resolves once its `/readyz` answers 200. */
  static async start(options: CliServiceOptions): Promise<CliService> {
    const configFile = join(options.dir, `${options.service}.yaml`);
    const logFile = join(options.dir, `${options.service}.log`);
    await writeFile(configFile, stringify(options.config));
    const log = openSync(logFile, 'a');
    const script = `const { main } = await import('@shadow-replay/cli'); process.exitCode = await main([${JSON.stringify(options.service)}, '--config', ${JSON.stringify(configFile)}]);`;
    const child = spawn(process.execPath, [...(options.nodeArgs ?? []), '--conditions=source', '--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: ROOT,
      env: { ...process.env, ...options.env },
      stdio: ['ignore', log, 'pipe'],
    });
    closeSync(log);
    const service = new CliService(options, child, logFile);
    try {
      await waitFor(async () => !service.alive || (await httpStatus(`${service.url}/readyz`)) === 200, {
        timeoutMs: READY_TIMEOUT_MS,
        intervalMs: 100,
        what: `${options.service} (pid ${child.pid ?? '?'}) to be ready; log: ${logFile}`,
      });
    } catch (error) {
      await service.stop();
      throw error;
    }
    if (!service.alive) throw new Error(`${options.service} exited while starting; log: ${logFile}\n${service.#stderrTail}`);
    return service;
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  get alive(): boolean {
    return this.#child.exitCode === null && this.#child.signalCode === null;
  }

  /** The service's Prometheus text, or null when it does not answer. */
  async metrics(): Promise<string | null> {
    try {
      const response = await request(`${this.url}/metrics`, { headersTimeout: 5_000, bodyTimeout: 5_000 });
      const text = await response.body.text();
      return response.statusCode === 200 ? text : null;
    } catch {
      return null;
    }
  }

  /** SIGTERM (drain, flush, exit 0), SIGKILL after a deadline; resolves with the exit code (null when killed). Idempotent. */
  stop(deadlineMs = STOP_DEADLINE_MS): Promise<number | null> {
    this.#stopping ??= (async () => {
      if (!this.alive) return (await this.#exited).code;
      this.#child.kill('SIGTERM');
      const timer = setTimeout(() => this.#child.kill('SIGKILL'), deadlineMs);
      const { code } = await this.#exited;
      clearTimeout(timer);
      return code;
    })();
    return this.#stopping;
  }
}

async function httpStatus(url: string): Promise<number> {
  try {
    const response = await request(url, { headersTimeout: 2_000, bodyTimeout: 2_000 });
    await response.body.dump();
    return response.statusCode;
  } catch {
    return 0;
  }
}

/**
 * Sums the samples of one metric in Prometheus text, optionally only those whose labels
 * contain `labelFilter` (e.g. `reason="buffer_full"`); null when the metric is absent.
 */
export function metricSum(text: string | null, name: string, labelFilter?: string): number | null {
  if (text === null) return null;
  let sum: number | null = null;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || (line[name.length] !== ' ' && line[name.length] !== '{')) continue;
    if (labelFilter !== undefined && !line.includes(labelFilter)) continue;
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(value)) sum = (sum ?? 0) + value;
  }
  return sum;
}

/** The samples of one metric summed per value of one label (e.g. calls by `result`); empty when absent. */
export function metricByLabel(text: string | null, name: string, label: string): Record<string, number> {
  const out: Record<string, number> = {};
  if (text === null) return out;
  const pattern = new RegExp(`[{,]${label}="([^"]*)"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const key = pattern.exec(line)?.[1];
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (key !== undefined && Number.isFinite(value)) out[key] = (out[key] ?? 0) + value;
  }
  return out;
}
