import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadConfig, allSettings } from '../src/settings.js';

const example = fileURLToPath(new URL('../../../config/example.yaml', import.meta.url));

async function configFile(text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'shadow-config-'));
  const file = join(dir, 'config.yaml');
  await writeFile(file, text);
  return file;
}

describe('configuration', () => {
  it('accepts the example configuration shipped in config/', async () => {
    const config = await loadConfig(example);
    assert.equal(config.experiment?.candidates[0]?.rate.rps, 5);
    const settings = allSettings(config, { CANDIDATE_API_KEY: 'k', JUDGE_API_KEY: 'j' });
    assert.equal(settings.replay.apiKeys['llama-3-3'], 'k');
    assert.equal(settings.evaluator.judgeApiKey, 'j');
  });

  it('names the field path and what was expected when a value is wrong', async () => {
    const file = await configFile('experiment:\n  id: e1\n  candidates:\n    - name: c1\n      baseUrl: http://127.0.0.1:1\n    - name: c2\n      baseUrl: http://127.0.0.1:2\n      rate: { rps: -3 }\n');
    await assert.rejects(loadConfig(file), (error: Error) => {
      assert.match(error.message, /experiment\.candidates\[1\]\.rate\.rps: /);
      assert.match(error.message, />0/);
      return true;
    });
  });

  it('names the evaluator retry and judge retry fields when they are wrong', async () => {
    const evaluator = await configFile('evaluator:\n  attempts: 0\n  backoff: { type: linear, jitter: 2 }\n');
    await assert.rejects(loadConfig(evaluator), (error: Error) => {
      assert.match(error.message, /evaluator\.attempts: .*>=1/);
      assert.match(error.message, /evaluator\.backoff\.type: .*"exponential"\|"fixed"/);
      assert.match(error.message, /evaluator\.backoff\.jitter: .*<=1/);
      return true;
    });
    const judge = await configFile('experiment:\n  id: e1\n  candidates: [{ name: c1, baseUrl: "http://127.0.0.1:1" }]\n  judge: { baseUrl: "http://127.0.0.1:2", model: j, retry: { attempts: 11 } }\n');
    await assert.rejects(loadConfig(judge), /experiment\.judge\.retry\.attempts: .*<=10/);
  });

  it('gives the evaluator its documented retry defaults', async () => {
    const config = await loadConfig(await configFile('{}\n'));
    assert.equal(config.evaluator.attempts, 3);
    assert.deepEqual(config.evaluator.backoff, { type: 'exponential', delayMs: 1_000, jitter: 0.5 });
  });

  it('rejects unknown fields instead of ignoring a typo', async () => {
    const file = await configFile('replay:\n  listn: { port: 1 }\n');
    await assert.rejects(loadConfig(file), /replay: Unrecognized key: "listn"/);
  });

  it('fails at start when an API-key variable the config names is not set', async () => {
    const config = await loadConfig(example);
    assert.throws(() => allSettings(config, {}), /experiment\.candidates\[0\]\.apiKeyEnv names CANDIDATE_API_KEY, which is not set/);
  });
});
