import assert from 'node:assert/strict';
import { test } from 'node:test';
import { countTokens } from '../src/index.js';
import { assembledContent, chat, completion, contentOf, sseChunks, sseData, startSim, userMessages } from './helpers.js';

test('a streamed answer assembles to exactly the non-streamed text', async (t) => {
  const { url } = await startSim(t, { profile: 'stable', overrides: { timeScale: 0, chunkTokens: 2 } });
  const messages = userMessages('Stream me something about offsets.');

  const whole = await chat(url, { model: 'gpt-sim', messages });
  const streamed = await chat(url, { model: 'gpt-sim', messages, stream: true });

  assert.equal(streamed.status, 200);
  assert.match(String(streamed.headers['content-type']), /^text\/event-stream/);
  const chunks = sseChunks(streamed.text);
  assert.equal(chunks[0]?.choices[0]?.delta.role, 'assistant');
  assert.ok(chunks.every((chunk) => chunk.object === 'chat.completion.chunk'));
  // Several content chunks of at most chunkTokens words each.
  const contentChunks = chunks.filter((chunk) => (chunk.choices[0]?.delta.content ?? '') !== '');
  assert.ok(contentChunks.length > 3);
  assert.ok(contentChunks.every((chunk) => countTokens(chunk.choices[0]?.delta.content ?? '') <= 2));
  assert.equal(assembledContent(chunks), contentOf(whole));
  assert.equal(chunks.at(-1)?.choices[0]?.finish_reason, 'stop');
  assert.equal(sseData(streamed.text).at(-1), '[DONE]');
  assert.equal(completion(whole).model, 'gpt-sim');
});

test('include_usage adds a final usage chunk whose counts match the prompt and the answer', async (t) => {
  const { url } = await startSim(t, { profile: 'stable', overrides: { timeScale: 0 } });
  const messages = [
    { role: 'system', content: 'You are terse.' },
    { role: 'user', content: 'Count these five words please' },
  ];

  const streamed = await chat(url, { messages, stream: true, stream_options: { include_usage: true } });
  const chunks = sseChunks(streamed.text);
  const usageChunk = chunks.at(-1);
  const text = assembledContent(chunks);

  assert.deepEqual(usageChunk?.choices, []);
  assert.equal(usageChunk?.usage?.prompt_tokens, 3 + 5);
  assert.equal(usageChunk?.usage?.completion_tokens, countTokens(text));
  assert.equal(usageChunk?.usage?.total_tokens, 8 + countTokens(text));
  assert.ok(chunks.slice(0, -1).every((chunk) => chunk.usage === null));

  const without = sseChunks((await chat(url, { messages, stream: true })).text);
  assert.ok(without.every((chunk) => chunk.usage === undefined));
});

test('max_tokens caps the answer with finish_reason length, streamed or not', async (t) => {
  const { url } = await startSim(t, { profile: 'stable', overrides: { timeScale: 0, outputTokens: { min: 30, max: 30 } } });
  const messages = userMessages('Write a long answer.');

  const capped = completion(await chat(url, { messages, max_tokens: 5 }));
  const full = completion(await chat(url, { messages }));
  const newStyle = completion(await chat(url, { messages, max_completion_tokens: 7, max_tokens: 50 }));
  const streamed = sseChunks((await chat(url, { messages, max_tokens: 5, stream: true })).text);

  assert.equal(capped.choices[0]?.finish_reason, 'length');
  assert.equal(capped.usage.completion_tokens, 5);
  assert.equal(countTokens(capped.choices[0]?.message.content ?? ''), 5);
  assert.equal(full.choices[0]?.finish_reason, 'stop');
  assert.equal(full.usage.completion_tokens, 30);
  assert.ok((full.choices[0]?.message.content ?? '').startsWith(capped.choices[0]?.message.content ?? '-'));
  assert.equal(newStyle.usage.completion_tokens, 7);
  assert.equal(streamed.at(-1)?.choices[0]?.finish_reason, 'length');
  assert.equal(assembledContent(streamed), capped.choices[0]?.message.content);
});
