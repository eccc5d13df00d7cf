/**
 * A benchmark helper process (`bench-worker.ts`) and the calls the benchmark makes to it over
 * Node's IPC channel: hosting a simulated model, or generating load. Keeping the load generator
 * and the models in processes of their own keeps them off the event loop of what is measured.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { SimProfilePatch, SimStats } from '@shadow-replay/sim';
import type { OpenLoopOptions, OpenLoopResult } from './open-loop-load.js';

export interface WorkerMethods {
  /** Starts the worker's simulated model (one per worker) on a free loopback port. */
  startSim: (params: { profile: string; overrides: SimProfilePatch; statsWindowSeconds: number }) => { url: string };
  simStats: (params: Record<string, never>) => SimStats;
  resetSimStats: (params: Record<string, never>) => null;
  /** Changes the running model's profile (applies to requests that arrive afterwards). */
  setSimProfile: (params: { patch: SimProfilePatch }) => null;
  /** One open-loop run; the worker keeps one connection pool per origin across runs, so later runs find warm connections. */
  load: (params: OpenLoopOptions & { connections: number }) => OpenLoopResult;
}
export type WorkerMethod = keyof WorkerMethods;
/** What the worker implements: each method, possibly async. */
export type WorkerHandlers = { [M in WorkerMethod]: (params: Parameters<WorkerMethods[M]>[0]) => ReturnType<WorkerMethods[M]> | Promise<ReturnType<WorkerMethods[M]>> };

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** The URL, when it points at this machine; benchmarks send load nowhere else. */
export function assertLoopback(baseUrl: string): URL {
  const base = new URL(baseUrl);
  if (!LOOPBACK_HOSTS.has(base.hostname)) throw new Error(`bench load: ${baseUrl} is not a loopback address; benchmarks only talk to this machine`);
  return base;
}

export interface WorkerRequest {
  id: number;
  method: WorkerMethod;
  params: unknown;
}

export type WorkerReply = { id: number; result: unknown } | { id: number; error: string };

export function isWorkerRequest(message: unknown): message is WorkerRequest {
  return typeof message === 'object' && message !== null && 'id' in message && typeof message.id === 'number' && 'method' in message && typeof message.method === 'string';
}

function isWorkerReply(message: unknown): message is WorkerReply {
  return typeof message === 'object' && message !== null && 'id' in message && typeof message.id === 'number' && ('result' in message || 'error' in message);
}

const WORKER_ENTRY = fileURLToPath(new URL('./bench-worker.ts', import.meta.url));
const EXIT_DEADLINE_MS = 10_000;

/** The parent's handle on one worker process. */
export class BenchWorker {
  readonly name: string;
  readonly #child: ChildProcess;
  readonly #calls = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  readonly #exited: Promise<void>;
  #nextId = 1;
  #closing: Promise<void> | undefined;

  private constructor(name: string, child: ChildProcess) {
    this.name = name;
    this.#child = child;
    child.on('message', (message: unknown) => {
      if (!isWorkerReply(message)) return;
      const call = this.#calls.get(message.id);
      if (call === undefined) return;
      this.#calls.delete(message.id);
      if ('error' in message) call.reject(new Error(`${name}: ${message.error}`));
      else call.resolve(message.result);
    });
    this.#exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        for (const call of this.#calls.values()) call.reject(new Error(`${name} exited (${signal ?? `code ${code ?? '?'}`}) during a call`));
        this.#calls.clear();
        resolve();
      });
    });
  }

  /** Forks `bench-worker.ts` from source (tsx), its stderr on ours. */
  static start(name: string): BenchWorker {
    const child = fork(WORKER_ENTRY, [name], {
      execArgv: ['--conditions=source', '--import', 'tsx'],
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      serialization: 'advanced',
    });
    return new BenchWorker(name, child);
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  call<M extends WorkerMethod>(method: M, params: Parameters<WorkerMethods[M]>[0]): Promise<ReturnType<WorkerMethods[M]>> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#calls.set(id, { resolve: resolve as (value: unknown) => void, reject });
      const request: WorkerRequest = { id, method, params };
      this.#child.send(request, (error) => {
        if (error === null) return;
        this.#calls.delete(id);
        reject(error);
      });
    });
  }

  /** Asks the worker to close what it holds and exit; kills it after a deadline. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
      if (this.#child.connected) this.#child.disconnect();
      const timer = setTimeout(() => this.#child.kill('SIGKILL'), EXIT_DEADLINE_MS);
      await this.#exited;
      clearTimeout(timer);
    })();
    return this.#closing;
  }
}
