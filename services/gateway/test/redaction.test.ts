import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Redactor } from '../src/redaction.js';

const all = new Redactor({ builtins: ['email', 'phone', 'card', 'apiKey'], patterns: [{ name: 'employee', regex: 'EMP-\\d{6}' }] });

describe('redaction before publishing', () => {
  it('removes emails, phone numbers, card numbers and API keys from text', () => {
    const text = 'Mail jane.doe+x@example.co.uk or call +1 415-555-0132; card 4111 1111 1111 1111; key sk-abcdefghijklmnopqrstuv and AKIAABCDEFGHIJKLMNOP, Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig';
    const out = all.text(text);
    for (const secret of ['jane.doe', '415-555-0132', '4111 1111 1111 1111', 'sk-abcdefghijklmnopqrstuv', 'AKIAABCDEFGHIJKLMNOP', 'eyJhbGciOiJIUzI1NiJ9']) {
      assert.ok(!out.includes(secret), `${secret} survived: ${out}`);
    }
    assert.match(out, /\[REDACTED:email\]/);
    assert.match(out, /\[REDACTED:phone\]/);
    assert.match(out, /\[REDACTED:card\]/);
    assert.match(out, /\[REDACTED:apiKey\]/);
  });

  it('leaves ordinary numbers alone: digits that fail the Luhn check, years, short counts', () => {
    const text = 'In 2024 we shipped 1234 5678 9012 3456 units over 12 days at 99.5%.';
    assert.equal(all.text(text), text);
  });

  it('applies custom patterns and redacts text parts of multi-part messages', () => {
    const body = all.request({
      messages: [
        { role: 'system', content: 'Employee EMP-123456 asks.' },
        { role: 'user', content: [{ type: 'text', text: 'reach me at a@b.io' }, { type: 'image_url', image_url: { url: 'https://x/y.png' } }] },
      ],
    });
    assert.equal(body.messages[0]?.content, 'Employee [REDACTED:employee] asks.');
    assert.deepEqual(body.messages[1]?.content, [{ type: 'text', text: 'reach me at [REDACTED:email]' }, { type: 'image_url', image_url: { url: 'https://x/y.png' } }]);
  });

  it('redacts every string of the body at any depth, keys included, keeps its structure and drops the end user\'s identifiers', () => {
    const body = all.request({
      model: 'gpt-x',
      user: 'jane@example.com',
      safety_identifier: 'hash-of-jane',
      metadata: { note: 'call +1 415-555-0132', 'owner a@b.io': 'yes' },
      tools: [{ type: 'function', function: { name: 'lookup', description: 'admin key sk-abcdefghijklmnopqrstuv', parameters: { type: 'object', properties: { who: { type: 'string', enum: ['EMP-123456'] } } } } }],
      messages: [
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'lookup', arguments: '{"card": "4111 1111 1111 1111", "n": 3}' } }] },
        { role: 'tool', tool_call_id: 'call_1', content: 'holder: a@b.io' },
      ],
    });
    assert.deepEqual(body, {
      model: 'gpt-x',
      metadata: { note: 'call [REDACTED:phone]', 'owner [REDACTED:email]': 'yes' },
      tools: [{ type: 'function', function: { name: 'lookup', description: 'admin key [REDACTED:apiKey]', parameters: { type: 'object', properties: { who: { type: 'string', enum: ['[REDACTED:employee]'] } } } } }],
      messages: [
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'lookup', arguments: '{"card": "[REDACTED:card]", "n": 3}' } }] },
        { role: 'tool', tool_call_id: 'call_1', content: 'holder: [REDACTED:email]' },
      ],
    });
  });

  it('redacts JSON-valued strings (tool-call arguments) as text: formatting kept, and a match across their syntax is removed all the same', () => {
    const custom = new Redactor({ builtins: ['email'], patterns: [{ name: 'pin', regex: 'pin": "\\d+' }] });
    const call = (args: string) => custom.response({ choices: [{ index: 0, content: null, finishReason: 'tool_calls', toolCalls: [{ type: 'function', function: { name: 'f', arguments: args } }] }] })?.choices[0]?.toolCalls[0]?.function.arguments;
    assert.equal(call('{ "to": "a@b.io",  "n": 1 }'), '{ "to": "[REDACTED:email]",  "n": 1 }');
    assert.equal(call('{"pin": "1234"}'), '{"[REDACTED:pin]"}', 'privacy before validity');
  });

  it('redacts nothing when no rule is enabled', () => {
    const none = new Redactor({ builtins: [], patterns: [] });
    assert.equal(none.text('a@b.io 4111 1111 1111 1111'), 'a@b.io 4111 1111 1111 1111');
  });
});
