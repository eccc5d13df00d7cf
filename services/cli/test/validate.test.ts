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

  it('rejects unknown fields instead of ignoring a typo', async () => {
    const file = await configFile('replay:\n  listn: { port: 1 }\n');
    await assert.rejects(loadConfig(file), /replay: Unrecognized key: "listn"/);
  });

  it('fails at start when an API-key variable the config names is not set', async () => {
    const config = await loadConfig(example);
    assert.throws(() => allSettings(config, {}), /experiment\.candidates\[0\]\.apiKeyEnv names CANDIDATE_API_KEY, which is not set/);
  });
});
