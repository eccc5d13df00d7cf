import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isSimError, parseSimArgs, runSimCli, SimErrorCode } from '../src/index.js';
import { get, waitFor } from './helpers.js';

test('parseSimArgs reads port, host, profile and dotted --set overrides', () => {
  const args = parseSimArgs([
    '--port', '0', '--host=127.0.0.1', '--profile', 'candidate',
    '--set', 'divergence=0.25', '--set', 'ttftMs.median=10', '--set=seed=42', '--set', 'name=cand-2',
  ]);

  assert.equal(args.port, 0);
  assert.equal(args.profileName, 'candidate');
  assert.equal(args.profile?.divergence, 0.25);
  assert.deepEqual(args.profile?.ttftMs, { median: 10, p99: 350 });
  assert.equal(args.profile?.seed, '42');
  assert.equal(args.profile?.name, 'cand-2');
  assert.equal(parseSimArgs([]).port, 8000);
});

test('parseSimArgs rejects unknown options and names the bad profile field', () => {
  assert.throws(() => parseSimArgs(['--bogus']), (error: unknown) => isSimError(error, SimErrorCode.InvalidArgs));
  assert.throws(() => parseSimArgs(['--port']), (error: unknown) => isSimError(error, SimErrorCode.InvalidArgs));
  assert.throws(
    () => parseSimArgs(['--set', 'ttftMs.p99=-1']),
    (error: unknown) => isSimError(error, SimErrorCode.InvalidProfile) && /ttftMs\.p99/.test(error.message),
  );
});

test('runSimCli prints help, or serves until stopped after logging its URL and profile', async () => {
  let help = '';
  assert.equal(await runSimCli(['--help'], { stdout: { write: (text: string) => (help += text) } }), 0);
  assert.match(help, /--profile NAME/);

  let out = '';
  const stop = new AbortController();
  const running = runSimCli(['--port', '0', '--profile', 'fast'], {
    stdout: { write: (text: string) => (out += text) },
    signal: stop.signal,
  });
  await waitFor(() => out.includes('\n'), 2000, 'the listening line');
  const match = /^sim listening on (http:\/\/127\.0\.0\.1:\d+) \(profile fast\)\n$/.exec(out);
  assert.ok(match, out);
  const health = await get(`${match[1]}/healthz`);
  assert.equal(health.status, 200);

  stop.abort();
  assert.equal(await running, 0);
  await assert.rejects(get(`${match[1]}/healthz`));
});

test('runSimCli exits 2 with a message on bad arguments', async () => {
  let err = '';
  const code = await runSimCli(['--profile', 'nope'], { stderr: { write: (text: string) => (err += text) } });

  assert.equal(code, 2);
  assert.match(err, /unknown sim profile "nope"/);
});
