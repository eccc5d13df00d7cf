import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WindowProgress } from '../src/window.js';

/** Resolves to whether `progress.finished` has resolved, without waiting for it. */
async function isFinished(progress: WindowProgress): Promise<boolean> {
  return Promise.race([progress.finished.then(() => true), new Promise<boolean>((resolve) => setImmediate(() => resolve(false)))]);
}

describe('the progress of a window scan', () => {
  it('is finished at once when every range is empty', async () => {
    const progress = new WindowProgress([
      { partition: 0, start: 5n, end: 5n },
      { partition: 1, start: 0n, end: 0n },
    ]);
    assert.equal(progress.total, 0);
    assert.equal(await isFinished(progress), true);
  });

  it('finishes a partition when a handled batch reaches the last offset of its range, not when end − start records were counted', async () => {
    const progress = new WindowProgress(
      [
        { partition: 0, start: 10n, end: 20n },
        { partition: 1, start: 0n, end: 3n },
      ],
      { from: 1_000, to: 2_000 },
    );
    assert.equal(progress.total, 13);
    // Partition 0: seven records read; offsets 13, 16 and 19 hold transaction markers.
    for (let i = 0; i < 7; i++) progress.handled(0, i !== 3);
    progress.reached(0, '18');
    assert.equal(await isFinished(progress), false, 'offset 19 is still ahead');
    assert.equal(progress.skipped, 0, 'nothing is counted skipped before the partition is done');
    progress.reached(0, '19');
    assert.equal(progress.skipped, 3);
    assert.equal(await isFinished(progress), false, 'partition 1 is not done');
    // Partition 1 holds only an aborted transaction and its marker: a filtered batch past the range.
    progress.reached(1, '7');
    assert.equal(await isFinished(progress), true);
    assert.deepEqual({ done: progress.done, inWindow: progress.inWindow, skipped: progress.skipped, scanned: progress.scanned }, { done: 7, inWindow: 6, skipped: 6, scanned: 13 });
    progress.reached(1, '9');
    assert.equal(progress.skipped, 6, 'a partition is counted done once');
  });

  it('ignores positions of partitions it does not scan', async () => {
    const progress = new WindowProgress([{ partition: 2, start: 0n, end: 1n }]);
    progress.reached(0, '100');
    assert.equal(await isFinished(progress), false);
    progress.handled(2);
    progress.reached(2, '0');
    assert.equal(await isFinished(progress), true);
    assert.equal(progress.skipped, 0);
  });
});
