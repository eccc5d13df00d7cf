import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ResponseEventSchema, decodeEvent } from '@shadow-replay/contracts';
import { SimFault } from '@shadow-replay/sim';
import { FaultPipeline, faultRequests, faultSeed, finishCase } from '../support/fault-pipeline.js';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';

/** 20% of candidate requests fail, split evenly over the kinds the simulator can inject (six since `stall`). */
const FAULT_KINDS = Object.values(SimFault);
const RATE_EACH = 0.2 / FAULT_KINDS.length;

describe('a candidate that fails 20% of requests', () => {
  it('counts every 5xx, 429, timeout, stalled or truncated stream and malformed answer as candidate_error and evaluates the rest', async (t) => {
    const requests = faultRequests();
    const seed = faultSeed();
    t.diagnostic(`FAULT_SEED=${seed}: ${(RATE_EACH * 100).toFixed(2)}% each of ${FAULT_KINDS.join(', ')}, drawn per request id`);
    let proxy: FaultProxy | undefined;
    const pipeline = await FaultPipeline.start(t, {
      candidate: { profile: 'candidate', overrides: { timeScale: 0.05 } },
      wrapCandidate: async (url) => {
        proxy = await startFaultProxy({ target: url, seed: String(seed), rates: Object.fromEntries(FAULT_KINDS.map((fault) => [fault, RATE_EACH])) });
        return proxy;
      },
      // A held (timeout) call never sends its headers: the first-token deadline ends it after 3 s,
      // and 48 slots keep those holds from throttling the rest. The total deadline stays generous:
      // at 2 s it cut 2 of 4,000 healthy streams short once, on a busy machine (a CI run).
      candidateConfig: { timeouts: { firstTokenMs: 3_000, totalMs: 15_000 }, rate: { concurrency: 48 } },
    });
    assert.ok(proxy);
    const faults = proxy;
    const traffic = await pipeline.traffic(requests);

    // Per fault kind: how the requests that got it ended, e.g. malformed → evaluated=52.
    const endings = new Map<string, Map<string, number>>();
    const tally = async () => {
      endings.clear();
      for (const [id, state] of Object.entries(await pipeline.states())) {
        const kind = faults.faultOf(id) ?? 'none';
        const byState = endings.get(kind) ?? new Map<string, number>();
        byState.set(state, (byState.get(state) ?? 0) + 1);
        endings.set(kind, byState);
      }
    };
    const describeEndings = () =>
      [...endings]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([kind, byState]) => `${kind}→${[...byState].map(([state, count]) => `${state}=${count}`).join(',')}`)
        .join(' ');
    const calls = () => [...faults.calls.values()].reduce((sum, count) => sum + count, 0);
    const observation = await finishCase(t, pipeline, 'candidate faults 20%', { requests, ok: traffic.ok, failed: traffic.failed }, () => ({ seed, 'candidate calls': calls() }));
    await tally();
    t.diagnostic(`outcome by injected fault: ${describeEndings()}`);
    const errorCodes = new Map<string, number>();
    for (const record of await pipeline.scope.read(pipeline.scope.config.kafka.topics.candidateResponses)) {
      const decoded = decodeEvent(ResponseEventSchema, record.value);
      if (!decoded.ok || decoded.value.outcome === 'ok') continue;
      const code = decoded.value.error?.code ?? decoded.value.outcome;
      errorCodes.set(code, (errorCodes.get(code) ?? 0) + 1);
    }
    t.diagnostic(`candidate error events by code: ${[...errorCodes].map(([code, count]) => `${code}=${count}`).join(' ') || 'none'}`);

    assert.equal(traffic.failed, 0, 'users never see the candidate');
    assert.equal(observation.published, requests, 'every request reached the request topic');
    const faulted = [...Array(requests).keys()].filter((index) => faults.faultOf(`${pipeline.scope.id}-r-${index}`) !== undefined).length;
    assert.ok(faulted > requests * 0.15 && faulted < requests * 0.25, `about 20% of requests get a fault (${faulted} of ${requests})`);
    const wrong = [...endings].flatMap(([kind, byState]) =>
      [...byState].filter(([state]) => state !== (kind === 'none' ? 'evaluated' : 'candidate_error')).map(([state, count]) => `${count} request(s) with fault ${kind} ended ${state}`),
    );
    assert.deepEqual(wrong, [], 'every request with an injected fault is candidate_error, every other one evaluated');
    assert.equal(observation.counts.candidate_error, faulted);
    assert.equal(observation.counts.evaluated, requests - faulted);
    pipeline.passed();
  });
});
