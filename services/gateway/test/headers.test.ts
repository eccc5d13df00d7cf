import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { endToEndHeaders } from '../src/gateway-service.js';

describe('proxy headers', () => {
  it('drops hop-by-hop headers and the ones Connection names, and keeps repeated headers apart', () => {
    const out = endToEndHeaders({
      connection: 'keep-alive, x-hop',
      'keep-alive': 'timeout=5',
      'transfer-encoding': 'chunked',
      'x-hop': 'only for this hop',
      'content-type': 'application/json',
      'set-cookie': ['a=1', 'b=2'],
      host: 'gateway',
    });
    assert.deepEqual(out, { 'content-type': 'application/json', 'set-cookie': ['a=1', 'b=2'] });
  });
});
