import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { waitFor } from '@shadow-replay/platform';
import { createSimServer } from '@shadow-replay/sim';
import { request } from 'undici';
import { stringify } from 'yaml';
import { testScope } from './support/harness.js';

const root = fileURLToPath(new URL('..', import.meta.url));

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

async function get(url: string): Promise<{ status: number; text: string }> {
  try {
    const response = await request(url);
    return { status: response.statusCode, text: await response.body.text() };
  } catch {
    return { status: 0, text: '' };
  }
}

const SERVICES = [
  { name: 'replay', metric: 'shadow_replay_consumed_total' },
  { name: 'join', metric: 'shadow_join_pairs_total' },
  { name: 'evaluator', metric: 'shadow_evaluator_evaluated_total' },
  { name: 'gateway', metric: 'shadow_gateway_publish_sent_total' },
] as const;

describe('every service as its own process', () => {
  for (const service of SERVICES) {
    it(`${service.name} answers /healthz, /readyz and /metrics, and exits 0 on SIGTERM`, async (t) => {
      const sim = createSimServer({ profile: 'fast' });
      const model = await sim.start();
      t.after(() => sim.close());
      const port = await freePort();
      const scope = testScope(t, (id) => ({
        gateway: { listen: { port: service.name === 'gateway' ? port : 0 }, stable: { name: 'stable', baseUrl: model.url } },
        experiment: { id: `exp-${id}`, startFrom: 'earliest', candidates: [{ name: 'cand', baseUrl: model.url }] },
        [service.name === 'gateway' ? 'replay' : service.name]: { listen: { port: service.name === 'gateway' ? 0 : port } },
      }));
      const file = join(tmpdir(), `${scope.id}.yaml`);
      await writeFile(file, stringify(scope.config));
      const child = spawn(
        process.execPath,
        ['--conditions=source', '--import', 'tsx', '--input-type=module', '-e', `const { main } = await import('@shadow-replay/cli'); process.exitCode = await main(['${service.name}', '--config', ${JSON.stringify(file)}]);`],
        { cwd: root, env: { ...process.env, ...scope.env }, stdio: ['ignore', 'ignore', 'pipe'] },
      );
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      t.after(() => {
        if (child.exitCode === null) child.kill('SIGKILL');
      });
      const base = `http://127.0.0.1:${port}`;
      await waitFor(async () => (await get(`${base}/readyz`)).status === 200 || child.exitCode !== null, { timeoutMs: 60_000, what: `${service.name} to be ready` });
      assert.equal(child.exitCode, null, `${service.name} exited early: ${stderr}`);
      assert.equal((await get(`${base}/healthz`)).status, 200);
      const metrics = await get(`${base}/metrics`);
      assert.equal(metrics.status, 200);
      assert.match(metrics.text, new RegExp(`# HELP ${service.metric} `));
      const missing = await get(`${base}/no-such-route`);
      assert.equal(missing.status, 404);
      assert.equal((JSON.parse(missing.text) as { error: { code: string } }).error.code, 'not_found');
      child.kill('SIGTERM');
      const code = await Promise.race([exited, new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 30_000).unref())]);
      assert.equal(code, 0, `${service.name} should drain and exit 0 on SIGTERM; stderr: ${stderr}`);
    });
  }
});
