/**
 * Entry of a benchmark helper process (see `bench-worker-rpc.ts`): answers the parent's calls
 * over IPC and exits when the parent disconnects, closing its model and connections first.
 */
import { createSimServer, type SimServer } from '@shadow-replay/sim';
import { Pool } from 'undici';
import { assertLoopback, isWorkerRequest, type WorkerHandlers, type WorkerReply } from './bench-worker-rpc.js';

// argv[2] names the worker in `ps`; nothing else reads it.
let sim: SimServer | undefined;
const pools = new Map<string, Pool>();

const methods: WorkerHandlers = {
  startSim: async ({ profile, overrides, statsWindowSeconds }) => {
    if (sim !== undefined) throw new Error('this worker already runs a sim');
    sim = createSimServer({ profile, overrides, statsWindowSeconds });
    return sim.start();
  },
  simStats: () => runningSim().stats(),
  resetSimStats: () => {
    runningSim().resetStats();
    return null;
  },
  setSimProfile: ({ patch }) => {
    runningSim().setProfile(patch);
    return null;
  },
  load: async ({ connections, ...options }) => {
    const { origin } = assertLoopback(options.baseUrl);
    let pool = pools.get(origin);
    if (pool === undefined) {
      pool = new Pool(origin, { connections, pipelining: 1, keepAliveTimeout: 60_000 });
      pools.set(origin, pool);
    }
    // Imported on first use: the CLI package it needs for the prompts is large, and sim workers never load.
    const { runOpenLoop } = await import('./open-loop-load.js');
    return runOpenLoop(pool, options);
  },
};

function runningSim(): SimServer {
  if (sim === undefined) throw new Error('no sim started in this worker');
  return sim;
}

process.on('message', (message: unknown) => {
  if (!isWorkerRequest(message)) return;
  const method = Object.hasOwn(methods, message.method) ? (methods[message.method] as (params: unknown) => unknown) : undefined;
  const reply = (body: WorkerReply) => {
    if (process.connected) process.send?.(body);
  };
  if (method === undefined) {
    reply({ id: message.id, error: `unknown method ${message.method}` });
    return;
  }
  Promise.resolve()
    .then(() => method(message.params))
    .then(
      (result) => reply({ id: message.id, result }),
      (error: unknown) => reply({ id: message.id, error: error instanceof Error ? error.message : String(error) }),
    );
});

process.once('disconnect', () => {
  void (async () => {
    await Promise.all([...pools.values()].map((pool) => pool.destroy().catch(() => undefined)));
    await sim?.close().catch(() => undefined);
    process.exit(0);
  })();
});
