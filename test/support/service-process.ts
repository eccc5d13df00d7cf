/**
 * One shadow-replay service as its own OS process, started from source with tsx the way
 * `test/service-lifecycle.test.ts` does, so a test can SIGKILL it, restart it on the same
 * port and check that SIGTERM still drains and exits 0.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from '@shadow-replay/platform';
import { request } from 'undici';
import { withDeadline } from './harness.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

export const ServiceName = { gateway: 'gateway', replay: 'replay', join: 'join', evaluator: 'evaluator' } as const;
export type ServiceName = (typeof ServiceName)[keyof typeof ServiceName];

/** A free TCP port on loopback, for a service's `listen` address. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('no free port');
  return address.port;
}

/** GET on loopback that never throws: status 0 when nothing answers. */
export async function httpGet(url: string, timeoutMs = 2_000): Promise<{ status: number; text: string }> {
  try {
    const response = await request(url, { headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
    return { status: response.statusCode, text: await response.body.text() };
  } catch {
    return { status: 0, text: '' };
  }
}

/**
 * Sum of the series of `name` in a service's `/metrics` whose labels include `labels`
 * (0 when none matches, or when the service does not answer).
 */
export async function scrapeMetric(serviceUrl: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  const { text } = await httpGet(`${serviceUrl}/metrics`);
  let total = 0;
  for (const line of text.split('\n')) {
    const match = /^([A-Za-z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match === null || match[1] !== name) continue;
    const found = new Map([...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((label) => [label[1], label[2]]));
    if (Object.entries(labels).every(([key, value]) => found.get(key) === value)) total += Number(match[3]);
  }
  return total;
}

export interface ServiceProcessOptions {
  name: ServiceName;
  configFile: string;
  /** The port the configuration gives this service's `listen` address. */
  port: number;
  env: Record<string, string>;
  /** stdout and stderr of every run are appended here (pino logs go to stdout). */
  logFile: string;
  /** How long a start may take until `/readyz` answers 200. @defaultValue 90000 */
  readyTimeoutMs?: number;
  /**
   * Restarts after an exit nobody asked for, like a process supervisor would. Past this many
   * the process counts as crash-looping and stays down. @defaultValue 5
   */
  maxCrashRestarts?: number;
}

interface Run {
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Set when the test itself signalled this run (kill -9 or SIGTERM). */
  expectedExit: boolean;
}

/** Exit of a run the test did not cause, with the end of what the process wrote. */
export interface CrashRecord {
  code: number | null;
  signal: NodeJS.Signals | null;
  at: number;
}

export class ServiceProcess {
  readonly name: ServiceName;
  readonly port: number;
  readonly logFile: string;
  readonly #options: ServiceProcessOptions;
  #run: Run | undefined;
  #stderrTail = '';
  #stopped = false;
  /** Number of SIGKILLs sent by the test. */
  kills = 0;
  /** Starts after the first one (after a kill or a crash). */
  restarts = 0;
  readonly crashes: CrashRecord[] = [];
  #crashRestart: Promise<void> | undefined;

  constructor(options: ServiceProcessOptions) {
    this.#options = options;
    this.name = options.name;
    this.port = options.port;
    this.logFile = options.logFile;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get alive(): boolean {
    const child = this.#run?.child;
    return child !== undefined && child.exitCode === null && child.signalCode === null;
  }

  get pid(): number | undefined {
    return this.#run?.child.pid;
  }

  /** The last few KiB of stderr, for failure messages. */
  get stderrTail(): string {
    return this.#stderrTail;
  }

  /** Spawns the process and resolves once `/readyz` answers 200. */
  async start(): Promise<void> {
    if (this.#run !== undefined) this.restarts++;
    const run = this.#spawn();
    this.#run = run;
    await waitFor(async () => (await httpGet(`${this.url}/readyz`)).status === 200 || !this.alive, {
      timeoutMs: this.#options.readyTimeoutMs ?? 90_000,
      intervalMs: 100,
      what: `${this.name} (pid ${run.child.pid ?? '?'}) to be ready; log: ${this.logFile}`,
    });
    if (this.#run === run && !this.alive) throw new Error(`${this.name} exited while starting; log: ${this.logFile}\n${this.#stderrTail}`);
  }

  /** kill -9, then waits until the process is gone. */
  async kill9(): Promise<void> {
    const run = this.#run;
    if (run === undefined || !this.alive) throw new Error(`${this.name} is not running, nothing to kill`);
    run.expectedExit = true;
    this.kills++;
    run.child.kill('SIGKILL');
    await withDeadline(run.exited, 10_000, `${this.name} to die after SIGKILL`);
  }

  /** Waits for a crash-restart the supervisor may be doing right now. */
  async settled(): Promise<void> {
    await this.#crashRestart;
  }

  /** SIGTERM and the exit code (null when it had to be killed after the deadline). */
  async stop(deadlineMs = 45_000): Promise<number | null> {
    this.#stopped = true;
    await this.#crashRestart?.catch(() => undefined);
    const run = this.#run;
    if (run === undefined || !this.alive) return null;
    run.expectedExit = true;
    run.child.kill('SIGTERM');
    try {
      const { code } = await withDeadline(run.exited, deadlineMs, `${this.name} to exit after SIGTERM`);
      return code;
    } catch {
      run.child.kill('SIGKILL');
      await run.exited;
      return null;
    }
  }

  /** Last resort at test end: nothing of ours is left running. */
  destroy(): void {
    this.#stopped = true;
    if (this.alive) {
      if (this.#run !== undefined) this.#run.expectedExit = true;
      this.#run?.child.kill('SIGKILL');
    }
  }

  #spawn(): Run {
    const log = openSync(this.logFile, 'a');
    const script = `const { main } = await import('@shadow-replay/cli'); process.exitCode = await main([${JSON.stringify(this.name)}, '--config', ${JSON.stringify(this.#options.configFile)}]);`;
    const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: root,
      env: { ...process.env, ...this.#options.env },
      stdio: ['ignore', log, 'pipe'],
    });
    closeSync(log);
    child.stderr?.on('data', (chunk: Buffer) => {
      this.#stderrTail = (this.#stderrTail + chunk.toString()).slice(-4_096);
    });
    const run: Run = {
      child,
      expectedExit: false,
      exited: new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal }))),
    };
    void run.exited.then(({ code, signal }) => {
      if (run.expectedExit || this.#stopped || this.#run !== run) return;
      this.crashes.push({ code, signal, at: Date.now() });
      if (this.crashes.length > (this.#options.maxCrashRestarts ?? 5)) return;
      this.#crashRestart = new Promise<void>((resolve) => setTimeout(resolve, 1_000))
        .then(() => (this.#stopped ? undefined : this.start()))
        .catch(() => undefined);
    });
    return run;
  }
}

export interface RedisServerOptions {
  /** Loopback port; the same on every restart. */
  port: number;
  /** The data directory: the append-only file lives here and is reloaded on every start. */
  dir: string;
  /** Where the server's own log goes (appended on every start). */
  logFile: string;
  /** @defaultValue `everysec` */
  appendfsync?: 'always' | 'everysec' | 'no';
  /** Off: no persistence at all (no AOF, no snapshots), so a restart starts empty. @defaultValue true */
  appendonly?: boolean;
}

/**
 * A private `redis-server` with the append-only file on (and no RDB snapshots), which a fault
 * case can stop with SIGTERM (Redis fsyncs the AOF and exits) or SIGKILL (writes not yet
 * fsynced are lost) and start again on the same port and data directory.
 */
export class RedisServerProcess {
  readonly #options: RedisServerOptions;
  #child: ChildProcess | undefined;
  #exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | undefined;
  /** Starts after the first one. */
  restarts = 0;

  constructor(options: RedisServerOptions) {
    this.#options = options;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.#options.port}`;
  }

  get alive(): boolean {
    const child = this.#child;
    return child !== undefined && child.exitCode === null && child.signalCode === null;
  }

  /** Spawns the server and resolves once it has loaded its data and answers PING. */
  async start(timeoutMs = 60_000): Promise<void> {
    if (this.alive) throw new Error('redis-server is already running');
    if (this.#child !== undefined) this.restarts++;
    const log = openSync(this.#options.logFile, 'a');
    // Timestamp annotations in the AOF let a case cut off its last seconds, as an OS crash would.
    const args = ['--port', String(this.#options.port), '--bind', '127.0.0.1', '--dir', this.#options.dir, '--appendonly', this.#options.appendonly === false ? 'no' : 'yes', '--appendfsync', this.#options.appendfsync ?? 'everysec', '--aof-timestamp-enabled', 'yes', '--save', ''];
    const child = spawn('redis-server', args, { stdio: ['ignore', log, log] });
    closeSync(log);
    this.#child = child;
    this.#exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    await waitFor(async () => (await this.#ping()) || !this.alive, { timeoutMs, intervalMs: 50, what: `redis-server on port ${this.#options.port} to load its data; log: ${this.#options.logFile}` });
    if (!this.alive) throw new Error(`redis-server exited while starting; log: ${this.#options.logFile}`);
  }

  /** Sends `signal` and waits until the server is gone. */
  async stop(signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
    if (!this.alive || this.#exited === undefined) throw new Error('redis-server is not running');
    this.#child?.kill(signal);
    await withDeadline(this.#exited, 30_000, `redis-server to exit after ${signal}`);
  }

  /** Last resort at test end. */
  destroy(): void {
    if (this.alive) this.#child?.kill('SIGKILL');
  }

  /**
   * With the server stopped, drops every write after `epochSeconds` from the AOF
   * (`redis-check-aof --truncate-to-timestamp`): what an OS crash loses of writes the kernel
   * had not yet put on disk. Returns the tool's output.
   */
  async truncateAof(epochSeconds: number): Promise<string> {
    if (this.alive) throw new Error('stop redis-server before truncating its AOF');
    const manifest = join(this.#options.dir, 'appendonlydir', 'appendonly.aof.manifest');
    const tool = spawn('redis-check-aof', ['--truncate-to-timestamp', String(epochSeconds), manifest], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    tool.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    tool.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => tool.once('exit', resolve));
    if (code !== 0) throw new Error(`redis-check-aof exited ${code}: ${output}`);
    return output.trim();
  }

  /** True when the server answers PING with PONG (not while it is still loading the AOF). */
  #ping(): Promise<boolean> {
    return new Promise((resolve) => {
      const socket = createConnection({ host: '127.0.0.1', port: this.#options.port });
      let reply = '';
      const done = (ok: boolean) => {
        socket.destroy();
        resolve(ok);
      };
      socket.setTimeout(1_000, () => done(false));
      socket.once('error', () => done(false));
      socket.once('connect', () => socket.write('PING\r\n'));
      socket.on('data', (chunk: Buffer) => {
        reply += chunk.toString();
        if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
      });
    });
  }
}
