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

  it('redacts nothing when no rule is enabled', () => {
    const none = new Redactor({ builtins: [], patterns: [] });
    assert.equal(none.text('a@b.io 4111 1111 1111 1111'), 'a@b.io 4111 1111 1111 1111');
  });
});
