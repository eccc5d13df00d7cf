import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ResponseAssembler } from '../src/response-assembler.js';

const chunk = (delta: object, extra: object = {}) => `data: ${JSON.stringify({ id: 'c1', model: 'm', choices: [{ index: 0, delta, finish_reason: null }], ...extra })}\n\n`;

describe('ResponseAssembler', () => {
  it('rebuilds streamed content split across network chunks and times it on the given clock', () => {
    const assembler = new ResponseAssembler({ messages: [{ role: 'user', content: 'hi' }] }, 1000, 5_000);
    const text = chunk({ role: 'assistant' }) + chunk({ content: 'Hel' }) + chunk({ content: 'lo' }) + 'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n' + 'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}\n\ndata: [DONE]\n\n';
    const cut = text.indexOf('lo"') + 1;
    assembler.feedSse(text.slice(0, 40), 1010);
    assembler.feedSse(text.slice(40, cut), 1020);
    assembler.feedSse(text.slice(cut), 1050);
    assembler.end(1060);
    const result = assembler.result(true);
    assert.equal(result.complete, true);
    assert.equal(result.malformed, false);
    assert.equal(result.response?.choices[0]?.content, 'Hello');
    assert.equal(result.response?.choices[0]?.finishReason, 'stop');
    assert.deepEqual(result.usage, { prompt: 3, completion: 2, total: 5, source: 'usage' });
    assert.equal(result.timing.sentAt, 5_000);
    assert.equal(result.timing.ttftMs, 20, 'first content chunk arrived at 1020');
    assert.equal(result.timing.e2eMs, 60);
    assert.equal(result.timing.tpotMs, 30, '(1050 − 1020) / (2 − 1)');
    assert.deepEqual(result.timing.itl, { n: 1, p50: 30, p90: 30, p99: 30, max: 30 });
  });

  it('keeps a multi-byte character whole when a network chunk ends inside it', () => {
    const assembler = new ResponseAssembler(undefined, 0, 0);
    const bytes = Buffer.from(chunk({ content: 'café ✓' }) + 'data: [DONE]\n\n', 'utf8');
    // Cut inside 'é' (2 bytes) and inside '✓' (3 bytes), feeding byte ranges as a socket would.
    const e = bytes.indexOf(Buffer.from('é')) + 1;
    const check = bytes.indexOf(Buffer.from('✓')) + 2;
    for (const [from, to] of [[0, e], [e, check], [check, bytes.length]] as const) assembler.feedSse(bytes.subarray(from, to), to);
    assembler.end(bytes.length);
    const result = assembler.result(true);
    assert.equal(result.malformed, false);
    assert.equal(result.response?.choices[0]?.content, 'café ✓');
  });

  it('assembles tool-call deltas by index and counts them as first output', () => {
    const assembler = new ResponseAssembler(undefined, 0, 0);
    assembler.feedSse(chunk({ tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"ci' } }] }), 7);
    assembler.feedSse(chunk({ tool_calls: [{ index: 0, function: { arguments: 'ty":"Oslo"}' } }] }), 9);
    assembler.feedSse('data: {"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}\n\n', 10);
    assembler.end(11);
    const result = assembler.result(true);
    assert.deepEqual(result.response?.choices[0]?.toolCalls, [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } }]);
    assert.equal(result.response?.choices[0]?.content, null);
    assert.equal(result.timing.ttftMs, 7);
    assert.equal(result.usage?.source, 'estimate', 'no usage chunk: tokens are estimated and marked so');
  });

  it('marks a stream that ends without a finish reason or [DONE] as incomplete', () => {
    const assembler = new ResponseAssembler(undefined, 0, 0);
    assembler.feedSse(chunk({ content: 'partial' }), 5);
    assembler.end(6);
    assert.equal(assembler.result(true).complete, false);
  });

  it('flags data lines that are not JSON without losing the rest of the stream', () => {
    const assembler = new ResponseAssembler(undefined, 0, 0);
    assembler.feedSse(`data: {oops,}\n\n${chunk({ content: 'ok' })}data: [DONE]\n\n`, 5);
    const result = assembler.result(true);
    assert.equal(result.malformed, true);
    assert.equal(result.response?.choices[0]?.content, 'ok');
  });

  it('reads a non-streamed body, with no TTFT to time, only E2E', () => {
    const assembler = new ResponseAssembler(undefined, 100, 0);
    assembler.feedJson(JSON.stringify({ id: 'x', model: 'm', choices: [{ index: 0, message: { role: 'assistant', content: 'Hi' }, finish_reason: 'stop' }], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } }));
    assembler.end(180);
    const result = assembler.result(false);
    assert.equal(result.complete, true);
    assert.equal(result.response?.choices[0]?.content, 'Hi');
    assert.equal(result.timing.ttftMs, null);
    assert.equal(result.timing.tpotMs, null);
    assert.equal(result.timing.e2eMs, 80);
  });
});
