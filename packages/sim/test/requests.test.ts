import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chat, completion, get, sseChunks, startSim, userMessages } from './helpers.js';

interface ErrorShape {
  error: { message: string; type: string; param: string | null; code: string | null };
}

function assertOpenAiError(text: string, type: string): ErrorShape['error'] {
  const parsed = JSON.parse(text) as ErrorShape;
  assert.deepEqual(Object.keys(parsed.error).sort(), ['code', 'message', 'param', 'type']);
  assert.equal(parsed.error.type, type);
  assert.ok(parsed.error.message.length > 0);
  return parsed.error;
}

test('invalid JSON, missing messages and unknown routes get OpenAI error bodies', async (t) => {
  const { url } = await startSim(t, { overrides: { timeScale: 0 } });

  const badJson = await chat(url, '{"messages": [');
  const missing = await chat(url, { model: 'x' });
  const badRole = await chat(url, { messages: [{ content: 'no role' }] });
  const unknown = await get(`${url}/v1/completions`);

  assert.equal(badJson.status, 400);
  assertOpenAiError(badJson.text, 'invalid_request_error');
  assert.equal(missing.status, 400);
  assert.equal(assertOpenAiError(missing.text, 'invalid_request_error').param, 'messages');
  assert.equal(badRole.status, 400);
  assert.equal(assertOpenAiError(badRole.text, 'invalid_request_error').param, 'messages.0.role');
  assert.equal(unknown.status, 404);
  assertOpenAiError(unknown.text, 'invalid_request_error');
});

test('a non-stream answer has the OpenAI chat.completion shape and echoes the model', async (t) => {
  const { url } = await startSim(t, { overrides: { timeScale: 0 } });

  const result = await chat(url, { model: 'my-model', messages: userMessages('one two three') });
  const body = completion(result);

  assert.equal(result.status, 200);
  assert.match(body.id, /^chatcmpl-/);
  assert.equal(body.object, 'chat.completion');
  assert.ok(Number.isInteger(body.created));
  assert.equal(body.model, 'my-model');
  assert.equal(body.choices[0]?.index, 0);
  assert.equal(body.choices[0]?.message.role, 'assistant');
  assert.equal(body.choices[0]?.finish_reason, 'stop');
  assert.equal(body.usage.prompt_tokens, 3);
  assert.equal(body.usage.total_tokens, body.usage.prompt_tokens + body.usage.completion_tokens);
});

test('/v1/models lists the profile name and /healthz answers ok', async (t) => {
  const { url } = await startSim(t, { profile: 'candidate', overrides: { timeScale: 0 } });

  const models = JSON.parse((await get(`${url}/v1/models`)).text) as { object: string; data: { id: string }[] };
  const health = await get(`${url}/healthz`);

  assert.equal(models.object, 'list');
  assert.deepEqual(models.data.map((model) => model.id), ['candidate']);
  assert.equal(health.status, 200);
});

const weatherTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    parameters: { type: 'object', properties: { city: { type: 'string' }, days: { type: 'integer' } } },
  },
};

test('a request with tools selected by toolCallRate is answered with a tool call', async (t) => {
  const { url, server } = await startSim(t, { overrides: { timeScale: 0, toolCallRate: 1 } });
  const request = { messages: userMessages('Weather in Lyon?'), tools: [weatherTool, { ...weatherTool, function: { name: 'other' } }] };

  const body = completion(await chat(url, request));
  const streamed = sseChunks((await chat(url, { ...request, stream: true })).text);
  server.setProfile({ toolCallRate: 0 });
  const plain = completion(await chat(url, request));

  const call = body.choices[0]?.message.tool_calls?.[0];
  assert.equal(body.choices[0]?.finish_reason, 'tool_calls');
  assert.equal(body.choices[0]?.message.content, null);
  assert.equal(call?.type, 'function');
  assert.equal(call?.function.name, 'get_weather');
  const args = JSON.parse(call?.function.arguments ?? '') as { city: unknown; days: unknown };
  assert.equal(typeof args.city, 'string');
  assert.ok(Number.isInteger(args.days));
  assert.equal(streamed.at(-1)?.choices[0]?.finish_reason, 'tool_calls');
  assert.equal(plain.choices[0]?.finish_reason, 'stop');
  assert.equal(typeof plain.choices[0]?.message.content, 'string');
});

test('setProfile changes answers for later requests and rejects bad values', async (t) => {
  const { url, server } = await startSim(t, { profile: 'stable', overrides: { timeScale: 0 } });
  const request = { messages: userMessages('Same prompt every time') };

  const before = completion(await chat(url, request)).choices[0]?.message.content;
  server.setProfile({ seed: 'other-seed', name: 'renamed' });
  const after = completion(await chat(url, request)).choices[0]?.message.content;
  const models = JSON.parse((await get(`${url}/v1/models`)).text) as { data: { id: string }[] };

  assert.notEqual(before, after);
  assert.equal(models.data[0]?.id, 'renamed');
  assert.throws(() => server.setProfile({ errorRate: 1.5 }), /errorRate/);
  assert.equal(server.profile().errorRate, 0);
});
