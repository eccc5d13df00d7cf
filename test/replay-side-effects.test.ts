import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PENDING } from '@shadow-replay/contracts';
import { waitFor } from '@shadow-replay/platform';
import type { SimArrival } from '@shadow-replay/sim';
import { requestEvent } from './support/events.js';
import { answered, candidateAnswers, ids, setupReplay } from './support/replay-setup.js';

const tools = [{ type: 'function', function: { name: 'lookup_order', parameters: { type: 'object', properties: { order: { type: 'string' } } } } }];

describe('replay has no side effects on the user\'s behalf', () => {
  it('records the tool calls a candidate proposes and never executes them: one call per request, recorded tool results sent as they were', async (t) => {
    const arrivals: SimArrival[] = [];
    // Every request offering tools is answered with a tool call.
    const s = await setupReplay(t, { toolPolicy: 'record' }, { profile: 'fast', overrides: { toolCallRate: 1 }, onChat: (arrival) => arrivals.push(arrival) });
    const proposing = ids(4, 'propose').map((id) => requestEvent(id, { body: { tools, messages: [{ role: 'user', content: `where is order ${id}?` }] } }));
    const recordedHistory = [
      { role: 'system', content: 'You are a shop assistant.' },
      { role: 'user', content: 'where is order 42?' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'lookup_order', arguments: '{"order":"42"}' } }] },
      { role: 'tool', tool_call_id: 'call_1', content: '{"status":"shipped","eta":"tomorrow"}' },
    ];
    const withResults = requestEvent('with-results', { body: { tools, tool_choice: 'none', messages: recordedHistory } });
    const events = [...proposing, withResults];
    await s.produce(events);
    await s.startReplay();
    await answered(s, events.length);
    await waitFor(async () => (await s.outcomes.counts(s.experimentId, 'cand')).consumed === events.length, { timeoutMs: 30_000, what: 'every request consumed' });

    // A follow-up call would come before the answer is published: once every answer is out, the sim saw all there is.
    const calledIds = arrivals.map((arrival) => String(arrival.headers['x-shadow-request-id']));
    assert.deepEqual(calledIds.toSorted(), events.map((event) => event.requestId).toSorted(), 'exactly one call per request, no follow-up');
    for (const event of events) {
      const arrival = arrivals.find((candidate) => candidate.headers['x-shadow-request-id'] === event.requestId);
      assert.deepEqual(arrival?.request.messages, event.body.messages, `${event.requestId}: the conversation as recorded, nothing added`);
    }
    const toolMessages = arrivals.flatMap((arrival) => arrival.request.messages.filter((message) => message.role === 'tool'));
    assert.deepEqual(toolMessages, [recordedHistory[3]], 'the only tool result the candidate ever saw is the recorded one');

    const answers = await candidateAnswers(s);
    for (const event of proposing) {
      const choice = answers.get(event.requestId)?.response?.choices[0];
      assert.equal(choice?.finishReason, 'tool_calls', event.requestId);
      assert.equal(choice.toolCalls.length, 1, `${event.requestId}: the proposed call is recorded`);
      assert.equal(choice.toolCalls[0]?.function.name, 'lookup_order');
      assert.doesNotThrow(() => JSON.parse(choice.toolCalls[0]?.function.arguments ?? ''), 'its arguments are kept as the candidate sent them');
      assert.equal(await s.outcomes.state(s.experimentId, 'cand', event.requestId), PENDING, 'a proposed tool call is an answer, not an error');
    }
    const resultsAnswer = answers.get('with-results');
    assert.equal(resultsAnswer?.outcome, 'ok');
    assert.deepEqual(resultsAnswer.request?.messages, recordedHistory, 'the answer carries the request as sent');
    assert.equal(resultsAnswer.response?.choices[0]?.toolCalls.length, 0, 'tool_choice none: a plain answer to the recorded results');
  });

  it('sends the user\'s credentials to no candidate: each arm gets its own key and headers, the shadow headers, and nothing of the recorded request', async (t) => {
    const arrivals: SimArrival[] = [];
    // Two arms on the same sim: one with an API key and a header of its own, one with neither.
    const s = await setupReplay(t, [{ name: 'cand', apiKeyEnv: 'CAND_API_KEY', headers: { 'x-team': 'ml' } }, { name: 'keyless' }], {
      profile: 'fast',
      onChat: (arrival) => arrivals.push(arrival),
    });
    const secrets = { authorization: 'Bearer user-secret', cookie: 'session=user-secret', 'x-api-key': 'user-secret', 'api-key': 'user-secret', 'openai-api-key': 'user-secret', 'proxy-authorization': 'Basic user-secret' };
    await s.produce(ids(3, 'cred').map((id) => requestEvent(id, { headers: { ...secrets, 'user-agent': 'shop-app/1.0', 'x-tenant-id': 'acme' } })));
    await s.startReplay({ CAND_API_KEY: 'arm-key' });
    await answered(s, 6);

    assert.equal(arrivals.length, 6);
    for (const arrival of arrivals) {
      const { headers } = arrival;
      const where = JSON.stringify(headers);
      assert.ok(!where.includes('user-secret'), `no credential of the user: ${where}`);
      assert.ok(!where.includes('shop-app'), `no header of the recorded request: ${where}`);
      for (const name of ['cookie', 'x-api-key', 'api-key', 'openai-api-key', 'proxy-authorization', 'x-tenant-id']) assert.equal(headers[name], undefined, name);
      assert.equal(headers['x-shadow-experiment'], s.experimentId);
      assert.match(String(headers['x-shadow-request-id']), /^cred\d$/u);
      const keyed = headers['x-team'] === 'ml';
      assert.equal(headers.authorization, keyed ? 'Bearer arm-key' : undefined, 'the arm\'s own key, or none');
    }
    assert.equal(arrivals.filter((arrival) => arrival.headers['x-team'] === 'ml').length, 3, 'three calls to each arm');
    const perArm = new Set(arrivals.map((arrival) => `${String(arrival.headers['x-team'] ?? '')}/${String(arrival.headers['x-shadow-request-id'])}`));
    assert.equal(perArm.size, 6, 'each request once to each arm, tagged with its own request id');
  });

  it('prepends the arm\'s system prompt to the recorded one, or adds it when there is none, and applies parameter overrides', async (t) => {
    const arrivals: SimArrival[] = [];
    const s = await setupReplay(
      t,
      { transforms: { systemPrompt: { mode: 'prepend', text: 'Answer in French.' }, params: { temperature: 0, top_p: 0.5 } } },
      { profile: 'fast', onChat: (arrival) => arrivals.push(arrival) },
    );
    await s.produce([
      requestEvent('has-system', { body: { temperature: 0.9, messages: [{ role: 'system', content: 'You are terse.' }, { role: 'user', content: 'hi' }] } }),
      requestEvent('no-system', { body: { messages: [{ role: 'user', content: 'hello' }] } }),
    ]);
    await s.startReplay();
    await answered(s, 2);
    const sent = (id: string) => arrivals.find((arrival) => arrival.headers['x-shadow-request-id'] === id)?.request;
    assert.deepEqual(sent('has-system')?.messages, [
      { role: 'system', content: 'Answer in French.\n\nYou are terse.' },
      { role: 'user', content: 'hi' },
    ]);
    assert.deepEqual(sent('no-system')?.messages, [
      { role: 'system', content: 'Answer in French.' },
      { role: 'user', content: 'hello' },
    ]);
    for (const id of ['has-system', 'no-system']) {
      assert.equal(sent(id)?.temperature, 0, `${id}: the override wins over the recorded value`);
      assert.equal(sent(id)?.['top_p'], 0.5);
    }
  });
});
