import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TickBatcher } from '../src/tick-batcher.js';

describe('TickBatcher', () => {
  it('writes the items added in one turn of the event loop together, and each caller waits for its batch', async () => {
    const writes: number[][] = [];
    const batcher = new TickBatcher<number>((items) => {
      writes.push(items);
      return Promise.resolve();
    });
    await Promise.all([1, 2, 3].map((item) => batcher.add(item)));
    await batcher.add(4);
    assert.deepEqual(writes, [[1, 2, 3], [4]]);
  });

  it('splits at maxBatch and fails every item of a failed write', async () => {
    const writes: string[][] = [];
    const batcher = new TickBatcher<string>((items) => {
      writes.push(items);
      return items.includes('bad') ? Promise.reject(new Error('write failed')) : Promise.resolve();
    }, 2);
    const results = await Promise.allSettled(['a', 'b', 'bad', 'c'].map((item) => batcher.add(item)));
    assert.deepEqual(writes, [['a', 'b'], ['bad', 'c']]);
    assert.deepEqual(results.map((result) => result.status), ['fulfilled', 'fulfilled', 'rejected', 'rejected']);
  });
});
