/**
 * Position bias of the LLM judge (issue 6, "checked by"): simulated judges with a strong position
 * bias, asked about 2,000 pairs whose true preference is known by construction. The real judge
 * client (two calls, order swapped) talks to a real sim server on loopback; its verdicts go
 * through `evaluatePair` and `buildReport` like the evaluator's.
 *
 * The sim judge's truth: the answer with more words wins, answers equal up to whitespace are a
 * tie. Its bias is a hash of (seed, prompt), so the run is reproducible and the two orders of a
 * pair (two different prompts) are biased independently. Two models of the bias:
 *
 * - close calls (`closeCallWords: 0`, the first test): the bias answers "A" only where the answers
 *   are of equal length, here the true ties; a clearly better answer wins from either position.
 *   This is how real judges show position bias (MT-bench, Zheng et al. 2023: mostly when the two
 *   answers are of similar quality), and the swap can then recover the truth exactly;
 * - every decision (the others): the bias overrides even a clear preference, which no swap can
 *   undo; it only turns the biased decisions into inconsistent ties.
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import type { EvaluationRecord, PairJob } from '@shadow-replay/contracts';
import { JudgeClient, type JudgeCall, type JudgeResult } from '@shadow-replay/evaluator';
import { buildReport, createRandom, evaluatePair, wilsonInterval, winRateInterval, type Interval, type RandomSource } from '@shadow-replay/evaluation';
import { createSimServer } from '@shadow-replay/sim';
import { responseEvent } from './support/events.js';
import { testScope } from './support/harness.js';

const Truth = { better: 'better', worse: 'worse', tie: 'tie' } as const;
type Truth = (typeof Truth)[keyof typeof Truth];

interface KnownPair {
  id: string;
  truth: Truth;
  stable: string;
  candidate: string;
}

const WORDS = ['offset', 'partition', 'broker', 'replica', 'leader', 'consumer', 'group', 'commit', 'segment', 'index', 'batch', 'record', 'topic', 'lag', 'fetch'];

function sentence(random: RandomSource, words: number): string {
  return Array.from({ length: words }, () => WORDS[random.nextBelow(WORDS.length)]).join(' ');
}

/**
 * `n` pairs, shuffled: the share `better` of them truly better, `worse` truly worse, the rest ties. A
 * better candidate answer adds 1–6 words to stable's; a worse one drops them; a tie differs from
 * stable's only in whitespace, so it is not an identical answer (which would be tied without a call).
 */
function knownPairs(n: number, [better, worse]: [number, number], seed: number): KnownPair[] {
  const random = createRandom(seed);
  const truths: Truth[] = [
    ...Array<Truth>(Math.round(n * better)).fill(Truth.better),
    ...Array<Truth>(Math.round(n * worse)).fill(Truth.worse),
  ];
  while (truths.length < n) truths.push(Truth.tie);
  for (let i = truths.length - 1; i > 0; i--) {
    const j = random.nextBelow(i + 1);
    [truths[i], truths[j]] = [truths[j]!, truths[i]!];
  }
  return truths.map((truth, i) => {
    const base = sentence(random, 8 + random.nextBelow(12));
    const extra = sentence(random, 1 + random.nextBelow(6));
    const id = `pb-${String(i).padStart(4, '0')}`;
    if (truth === Truth.better) return { id, truth, stable: base, candidate: `${base} ${extra}` };
    if (truth === Truth.worse) return { id, truth, stable: `${base} ${extra}`, candidate: base };
    return { id, truth, stable: base, candidate: base.replace(' ', '  ') };
  });
}

/** Win rate of the candidate that an unbiased judge would report: (better + tie / 2) / n. */
function truthWinRate(pairs: readonly KnownPair[]): number {
  const count = (truth: Truth) => pairs.filter((pair) => pair.truth === truth).length;
  return (count(Truth.better) + count(Truth.tie) / 2) / pairs.length;
}

/** Judges every pair with the real judge client against a sim judge of the given position bias. */
async function judgeAll(t: TestContext, positionBias: number, pairs: readonly KnownPair[], closeCallWords?: number): Promise<EvaluationRecord[]> {
  const judge = closeCallWords === undefined ? { positionBias } : { positionBias, closeCallWords };
  const sim = createSimServer({ profile: 'judge', overrides: { timeScale: 0, judge } });
  const { url } = await sim.start();
  t.after(() => sim.close());
  const scope = testScope(t, (id) => ({
    experiment: {
      id: `bias-${id}`.slice(0, 40),
      candidates: [{ name: 'cand', baseUrl: 'http://127.0.0.1:9' }],
      judge: { baseUrl: url, model: 'sim-judge', timeouts: { totalMs: 10_000 }, rate: { concurrency: 32 } },
    },
  }));
  const experiment = scope.config.experiment!;
  const client = new JudgeClient({ config: experiment.judge!, apiKey: undefined, redis: scope.redis, keyPrefix: scope.config.redis.keyPrefix, experimentId: experiment.id });
  t.after(() => client.close());
  const source = { topic: 't', partition: 0, offset: '0' };

  const records: EvaluationRecord[] = new Array<EvaluationRecord>(pairs.length);
  let next = 0;
  const worker = async () => {
    for (let index = next++; index < pairs.length; index = next++) {
      const pair = pairs[index]!;
      const job: PairJob = {
        schemaVersion: 1,
        experimentId: experiment.id,
        requestId: pair.id,
        arm: 'cand',
        request: { messages: [{ role: 'user', content: `Question ${pair.id}: how does Kafka keep consumer offsets?` }] },
        stable: responseEvent(pair.id, 'stable', { content: pair.stable }),
        candidate: responseEvent(pair.id, 'cand', { content: pair.candidate, experimentId: experiment.id }),
        sources: { stable: source, candidate: source },
      };
      const record = evaluatePair({ ...job, evaluatorVersion: 'test', now: 1 });
      record.judge = { ...(await client.judge(job)) };
      records[index] = record;
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
  assert.equal(sim.stats().requestsTotal, 2 * pairs.length, 'two calls per pair: none is identical, every one is judged');
  return records;
}

function judgeOf(record: EvaluationRecord): JudgeResult {
  return record.judge as unknown as JudgeResult;
}

/**
 * The candidate's win rate had the judge been asked once, in one order only (the swap disabled):
 * (candidate wins + ties / 2) / n, with the interval the report would print.
 */
function singleCallWinRate(records: readonly EvaluationRecord[], order: JudgeCall['order']): { rate: number; ci95: Interval } {
  let wins = 0;
  let ties = 0;
  for (const record of records) {
    const call = judgeOf(record).calls.find((entry) => entry.order === order);
    assert.ok(call?.winner, `${record.requestId}: no ${order} verdict`);
    const candidateLabel = order === 'stable_first' ? 'B' : 'A';
    if (call.winner === candidateLabel) wins++;
    else if (call.winner === 'tie') ties++;
  }
  return { rate: (wins + ties / 2) / records.length, ci95: winRateInterval(wins, ties, records.length) };
}

function armOf(records: EvaluationRecord[]) {
  const report = buildReport({ experimentId: records[0]!.experimentId, window: { from: 0, to: 1 }, generatedAt: 2, records, outcomes: { cand: { consumed: records.length, evaluated: records.length } } });
  return report.arms[0]!;
}

const contains = (interval: Interval | null, value: number) => interval !== null && interval.low <= value && value <= interval.high;

describe('the position-swapped judge against a position-biased judge', () => {
  it('recovers a candidate that is truly better in 70% of pairs from a judge whose strong bias decides the close calls, where one call per pair is far off', async (t) => {
    // 50% truly better, 10% truly worse, 40% ties: an unbiased judge reports 0.5 + 0.4 / 2 = 0.70.
    // The judge answers "A" in 90% of the close calls (here the ties) whichever answer it is.
    const bias = 0.9;
    const pairs = knownPairs(2000, [0.5, 0.1], 20_240_602);
    const truth = truthWinRate(pairs);
    assert.equal(truth, 0.7);
    const records = await judgeAll(t, bias, pairs, 0);
    const arm = armOf(records);
    const { judge } = arm;
    const stableFirst = singleCallWinRate(records, 'stable_first');
    const candidateFirst = singleCallWinRate(records, 'candidate_first');
    t.diagnostic(
      `close-call bias ${bias}: swapped win rate ${judge.winRate?.toFixed(4)} ${JSON.stringify(judge.ci95)}, wins ${judge.wins}, losses ${judge.losses}, ties ${judge.ties}, inconsistent ${judge.inconsistent}; ` +
        `single call stable first ${stableFirst.rate.toFixed(4)}, candidate first ${candidateFirst.rate.toFixed(4)}`,
    );

    // (a) Without the swap, one call per pair with the candidate in a fixed position is clearly
    // biased: expected 0.5 + 0.4 · (0.9 + 0.1 / 2) = 0.88 with the candidate first, 0.5 + 0.4 · 0.1 / 2 = 0.52
    // with it second. Neither interval holds the truth, so a report built on one call would be wrong.
    assert.ok(candidateFirst.rate > 0.85 && !contains(candidateFirst.ci95, truth), `candidate shown first: ${JSON.stringify(candidateFirst)}`);
    assert.ok(stableFirst.rate < 0.55 && !contains(stableFirst.ci95, truth), `stable shown first: ${JSON.stringify(stableFirst)}`);

    // (b) With the swap the reported win rate's interval holds the unbiased truth: clear
    // preferences are consistent in both orders, and a biased close call becomes an inconsistent tie.
    assert.equal(judge.n, 2000);
    assert.equal(judge.parseErrors, 0);
    assert.ok(contains(judge.ci95, truth), `swapped win rate ${judge.winRate} (95% CI ${JSON.stringify(judge.ci95)}) should hold the truth ${truth}`);
    assert.deepEqual([judge.wins, judge.losses], [1000, 200], 'every clear preference is kept, in its direction');
    // The inconsistent count shows the bias: a tie is inconsistent unless neither order was biased.
    const tied = pairs.filter((pair) => pair.truth === Truth.tie).length;
    const expected = tied * (1 - (1 - bias) ** 2);
    const sd = Math.sqrt(tied * (1 - bias) ** 2 * (1 - (1 - bias) ** 2));
    assert.ok(Math.abs(judge.inconsistent - expected) < 4 * sd, `inconsistent ${judge.inconsistent}, expected ${expected.toFixed(0)} ± ${(4 * sd).toFixed(0)}`);
    assert.equal(judge.inconsistent + judge.ties, tied);
    assert.ok(arm.verdict.reasons.some((reason) => reason.includes(`${judge.inconsistent} inconsistent`)), 'the verdict quotes the inconsistent count');
  });

  it('reports a win rate whose interval holds the unbiased truth while one order alone is far off, and counts the bias as inconsistent ties', async (t) => {
    const bias = 0.7;
    const pairs = knownPairs(2000, [0.3, 0.3], 20240601);
    const truth = truthWinRate(pairs);
    assert.equal(truth, 0.5);
    const records = await judgeAll(t, bias, pairs);
    const arm = armOf(records);
    const { judge } = arm;

    t.diagnostic(
      `bias ${bias}: swapped win rate ${judge.winRate?.toFixed(4)} ${JSON.stringify(judge.ci95)}, wins ${judge.wins}, losses ${judge.losses}, ties ${judge.ties}, inconsistent ${judge.inconsistent}; ` +
        `single call stable first ${singleCallWinRate(records, 'stable_first').rate.toFixed(4)}, candidate first ${singleCallWinRate(records, 'candidate_first').rate.toFixed(4)}`,
    );
    assert.equal(judge.n, 2000);
    assert.equal(judge.parseErrors, 0);
    assert.ok(contains(judge.ci95, truth), `swapped win rate ${judge.winRate} (95% CI ${JSON.stringify(judge.ci95)}) should hold the truth ${truth}`);

    // One call per pair is biased towards whichever side it shows first, far outside the truth's reach.
    // Expected: stable first (0.3·0.3 + 0.4·0.3/2) = 0.15; candidate first 0.3 + 0.3·0.7 + 0.4·(0.7 + 0.3/2) = 0.85.
    const stableFirst = singleCallWinRate(records, 'stable_first');
    const candidateFirst = singleCallWinRate(records, 'candidate_first');
    assert.ok(!contains(stableFirst.ci95, truth) && stableFirst.rate < 0.2, `stable shown first: ${JSON.stringify(stableFirst)}`);
    assert.ok(!contains(candidateFirst.ci95, truth) && candidateFirst.rate > 0.8, `candidate shown first: ${JSON.stringify(candidateFirst)}`);

    // A truly better or worse pair is inconsistent when the order showing the loser first is biased
    // (probability b); a tie unless neither order is biased (1 − (1 − b)²).
    const decided = pairs.filter((pair) => pair.truth !== Truth.tie).length;
    const tied = pairs.length - decided;
    const expected = decided * bias + tied * (1 - (1 - bias) ** 2);
    const sd = Math.sqrt(decided * bias * (1 - bias) + tied * (1 - (1 - bias) ** 2) * (1 - bias) ** 2);
    assert.ok(Math.abs(judge.inconsistent - expected) < 4 * sd, `inconsistent ${judge.inconsistent}, expected ${expected.toFixed(0)} ± ${(4 * sd).toFixed(0)}`);
    // Only the pairs where neither order was biased keep a decision, in the right direction.
    const decisive = (pairs.length * 0.3) * (1 - bias);
    for (const [name, count] of [['wins', judge.wins], ['losses', judge.losses]] as const) {
      assert.ok(Math.abs(count - decisive) < 4 * Math.sqrt(decisive * bias), `${name} ${count}, expected about ${decisive}`);
    }
    const wrongWay = records.filter((record, i) => {
      const verdict = judgeOf(record).verdict;
      return (pairs[i]!.truth === Truth.better && verdict === 'loss') || (pairs[i]!.truth === Truth.worse && verdict === 'win');
    });
    assert.equal(wrongWay.length, 0, 'bias never turns into a verdict against the truth when both orders must agree');
    assert.ok(arm.verdict.reasons.some((reason) => reason.includes(`${judge.inconsistent} inconsistent`)), 'the verdict quotes the inconsistent count');
  });

  it('keeps the direction of a real preference under a bias that overrides every decision, shrunk toward one half by the inconsistent ties', async (t) => {
    // Candidate truly better on 45%, worse on 15%: an unbiased judge reports 0.65. Under the swap, a
    // biased order turns a decision into an inconsistent tie, so the expected win rate is
    // 0.5 + (1 − b)(0.65 − 0.5) = 0.545: above parity, never past it, but attenuated. Among the
    // pairs that kept a decision the preference is intact: wins / (wins + losses) ≈ 45 / 60.
    const bias = 0.7;
    const pairs = knownPairs(2000, [0.45, 0.15], 99);
    const truth = truthWinRate(pairs);
    const { judge } = armOf(await judgeAll(t, bias, pairs));
    t.diagnostic(`truth ${truth}: swapped win rate ${judge.winRate?.toFixed(4)} ${JSON.stringify(judge.ci95)}, wins ${judge.wins}, losses ${judge.losses}, inconsistent ${judge.inconsistent}`);
    assert.ok(contains(judge.ci95, 0.5 + (1 - bias) * (truth - 0.5)), `win rate ${judge.winRate} ${JSON.stringify(judge.ci95)}`);
    assert.ok(judge.ci95 !== null && judge.ci95.low > 0.5, 'the candidate is still seen to be better');
    assert.ok(contains(wilsonInterval(judge.wins, judge.wins + judge.losses), 0.75), `decisive pairs: ${judge.wins} wins, ${judge.losses} losses`);
  });

  it('counts no inconsistent verdict and reports the truth exactly when the judge has no position bias', async (t) => {
    const pairs = knownPairs(300, [0.3, 0.3], 7);
    const { judge } = armOf(await judgeAll(t, 0, pairs));
    assert.equal(judge.inconsistent, 0);
    assert.equal(judge.winRate, truthWinRate(pairs));
    assert.deepEqual([judge.wins, judge.losses, judge.ties], [90, 90, 120]);
  });
});
