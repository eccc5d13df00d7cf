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
});
