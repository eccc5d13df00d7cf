import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chat, contentOf, mapLimit, startSim, userMessages } from './helpers.js';

const instant = { timeScale: 0 } as const;

test('the same prompt gets the same answer from two separate server instances', async (t) => {
  const first = await startSim(t, { profile: 'stable', overrides: instant });
  const second = await startSim(t, { profile: 'stable', overrides: instant });
  const body = { model: 'stable', messages: userMessages('Explain consumer lag in two sentences.') };

  const a = contentOf(await chat(first.url, body));
  const b = contentOf(await chat(second.url, body));
  const other = contentOf(await chat(first.url, { ...body, messages: userMessages('A different question.') }));

  assert.equal(a, b);
  assert.notEqual(a, other);
  assert.ok(a.split(' ').length > 5, `answer too short: ${a}`);
});

test('a candidate with divergence 0.1 differs from its base on 10% ±2% of 2,000 prompts', async (t) => {
  const stable = await startSim(t, { profile: 'stable', overrides: instant });
  const candidate = await startSim(t, { profile: 'candidate', overrides: instant });
  const prompts = Array.from({ length: 2000 }, (_, i) => `Question ${i}: what happens to partition ${i % 37}?`);

  const differs = await mapLimit(prompts, 32, async (prompt) => {
    const body = { model: 'm', messages: userMessages(prompt) };
    const [a, b] = await Promise.all([chat(stable.url, body), chat(candidate.url, body)]);
    return contentOf(a) !== contentOf(b);
  });

  const fraction = differs.filter(Boolean).length / prompts.length;
  assert.ok(fraction >= 0.08 && fraction <= 0.12, `diverging fraction ${fraction}`);
});

test('the diverging prompts are the same ones on every run', async (t) => {
  const prompts = Array.from({ length: 200 }, (_, i) => `Run check ${i}`);
  const runOnce = async (): Promise<string[]> => {
    const stable = await startSim(t, { profile: 'stable', overrides: instant });
    const candidate = await startSim(t, { profile: 'candidate', overrides: instant });
    const flags = await mapLimit(prompts, 16, async (prompt) => {
      const body = { messages: userMessages(prompt) };
      return contentOf(await chat(stable.url, body)) !== contentOf(await chat(candidate.url, body));
    });
    return prompts.filter((_, i) => flags[i]);
  };

  const first = await runOnce();
  const second = await runOnce();
  assert.deepEqual(first, second);
  assert.ok(first.length > 0, 'no prompt diverged at all');
});

test('temperature noise changes exactly one word when the request samples', async (t) => {
  const { url } = await startSim(t, { profile: 'stable', overrides: { ...instant, temperatureNoise: 1 } });
  const messages = userMessages('Describe the replay pipeline.');

  const greedy = contentOf(await chat(url, { messages, temperature: 0 })).split(' ');
  const sampled = contentOf(await chat(url, { messages, temperature: 0.7 })).split(' ');

  assert.equal(sampled.length, greedy.length);
  const changed = greedy.filter((word, i) => word !== sampled[i]).length;
  assert.equal(changed, 1);
});

test('with a request seed, temperature noise is reproducible, and another seed or temperature samples anew', async (t) => {
  const { url } = await startSim(t, { profile: 'stable', overrides: { ...instant, temperatureNoise: 0.3 } });
  const prompts = Array.from({ length: 400 }, (_, i) => `Seeded sampling ${i}`);
  const answers = (extra: Record<string, unknown>) => mapLimit(prompts, 16, async (prompt) => contentOf(await chat(url, { messages: userMessages(prompt), ...extra })));

  const greedy = await answers({ temperature: 0 });
  const seeded = await answers({ temperature: 0.7, seed: 1 });
  const again = await answers({ temperature: 0.7, seed: 1 });
  const otherSeed = await answers({ temperature: 0.7, seed: 2 });
  const otherTemperature = await answers({ temperature: 1, seed: 1 });

  assert.deepEqual(again, seeded, 'same request, same seed: same answers');
  const share = (list: string[], base: string[]) => list.filter((answer, i) => answer !== base[i]).length / prompts.length;
  // One draw per answer at rate 0.3: 120 of 400 expected perturbed, sd ≈ 9.
  assert.ok(Math.abs(share(seeded, greedy) - 0.3) < 0.07, `perturbed share ${share(seeded, greedy)}`);
  // Two independent draws disagree when either perturbs: 1 − 0.7² = 0.51.
  for (const [name, list] of [['another seed', otherSeed], ['another temperature', otherTemperature]] as const) {
    assert.ok(Math.abs(share(list, seeded) - 0.51) < 0.08, `${name}: disagreement with seed 1 is ${share(list, seeded)}`);
  }
});
