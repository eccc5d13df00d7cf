import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EvaluationRecordSchema, type EvaluationRecord } from '@shadow-replay/contracts';
import { ReportSchema, buildReport, evaluatePair, renderHtml, renderMarkdown, renderPairsJsonl, sideFigures, type PairExportLine, type Report } from '../src/index.js';
import { EXPERIMENT, SOURCES, evaluationRecord, responseEvent } from './fixtures.js';

const itl = (p50: number, p99: number, max: number) => ({ n: 9, p50, p90: (p50 + p99) / 2, p99, max });

/**
 * Pairs whose stable side streams with 20 ms gaps at 50 tok/s and whose candidate stutters (gaps
 * of 40 ms, p99 of i ms) at 25 tok/s; every fourth candidate answer is one chunk, so it has no ITL
 * and no throughput.
 */
function pairs(n: number): EvaluationRecord[] {
  return Array.from({ length: n }, (_, i) => {
    const requestId = `req-${String(i).padStart(3, '0')}`;
    const oneChunk = i % 4 === 3;
    return evaluatePair({
      experimentId: EXPERIMENT,
      requestId,
      arm: 'cand',
      stable: responseEvent({ requestId, itl: itl(20, 30, 35), outputTokensPerSec: 50 }),
      candidate: responseEvent({
        arm: 'cand',
        requestId,
        itl: oneChunk ? null : itl(40, 100 + i, 200 + i),
        outputTokensPerSec: oneChunk ? null : 25,
      }),
      sources: SOURCES,
      evaluatorVersion: 'test',
      now: 1_714_521_700_000 + i,
    });
  });
}

function report(records: EvaluationRecord[]): Report {
  const built = buildReport({
    experimentId: EXPERIMENT,
    window: { from: '2024-05-01T00:00:00Z', to: '2024-05-01T01:00:00Z' },
    generatedAt: '2024-05-01T01:05:00Z',
    records,
    outcomes: { cand: { consumed: records.length, evaluated: records.length } },
  });
  const parsed = ReportSchema.safeParse(built);
  assert.ok(parsed.success, parsed.success ? '' : JSON.stringify(parsed.error.issues));
  return built;
}

describe('inter-token latency and output tokens/s per pair', () => {
  it('are carried from the response timing into both sides of the evaluation record', () => {
    const figures = sideFigures(responseEvent({ itl: itl(20, 30, 35), outputTokensPerSec: 50 }));
    assert.deepEqual(figures.itl, { n: 9, p50: 20, p90: 25, p99: 30, max: 35 });
    assert.equal(figures.outputTokensPerSec, 50);
    const [record] = pairs(1);
    const decoded = EvaluationRecordSchema.parse(JSON.parse(JSON.stringify(record)));
    assert.deepEqual(decoded.stable.itl, itl(20, 30, 35));
    assert.deepEqual(decoded.candidate.itl, itl(40, 100, 200));
    assert.equal(decoded.candidate.outputTokensPerSec, 25);
  });

  it('are null for an answer that did not stream two content chunks, and absent records still parse', () => {
    const figures = sideFigures(responseEvent({ itl: null, outputTokensPerSec: null }));
    assert.equal(figures.itl, null);
    assert.equal(figures.outputTokensPerSec, null);
    // A record written before the fields existed.
    const older = evaluationRecord(1);
    assert.equal('itl' in older.stable, false);
    assert.ok(EvaluationRecordSchema.safeParse(older).success);
    const latency = report([older]).arms[0]!.latency;
    assert.equal(latency.itlP99Ms?.stable.n, 0);
    assert.equal(latency.outputTokensPerSec?.stable.n, 0);
  });

  it('are summarised per side in the report over the requests that measured them', () => {
    const latency = report(pairs(8)).arms[0]!.latency;
    assert.deepEqual(latency.itlP50Ms?.stable, { n: 8, mean: 20, p50: 20, p90: 20, p95: 20, p99: 20, max: 20 });
    // Candidate requests 0, 1, 2, 4, 5, 6 streamed: p99 gaps 100, 101, 102, 104, 105, 106.
    const p99 = latency.itlP99Ms!.candidate;
    assert.equal(p99.n, 6);
    assert.equal(p99.max, 106);
    assert.equal(p99.p50, 103);
    assert.equal(latency.itlMaxMs?.candidate.max, 206);
    assert.equal(latency.outputTokensPerSec?.stable.p50, 50);
    assert.equal(latency.outputTokensPerSec?.candidate.n, 6);
    assert.equal(latency.outputTokensPerSec?.candidate.mean, 25);
  });

  it('appear in the Markdown latency table for both sides', () => {
    const text = renderMarkdown(report(pairs(8)));
    assert.match(text, /^\| ITL p50 \| stable \| 8 \| 20\.0 ms \| 20\.0 ms \| 20\.0 ms \| 20\.0 ms \|$/m);
    assert.match(text, /^\| ITL p99 \| candidate \| 6 \| 103\.0 ms \| .* \| 106\.0 ms \|$/m);
    assert.match(text, /^\| ITL max \| candidate \| 6 \| .* \| 206\.0 ms \|$/m);
    assert.match(text, /^\| output tokens\/s \| stable \| 8 \| 50\.0 tok\/s \| 50\.0 tok\/s \| 50\.0 tok\/s \| 50\.0 tok\/s \|$/m);
    assert.match(text, /^\| output tokens\/s \| candidate \| 6 \| 25\.0 tok\/s \|/m);
  });

  it('appear in the HTML latency table for both sides', () => {
    const html = renderHtml(report(pairs(8)));
    const table = html.slice(html.indexOf('<table class="data compact latency">'), html.indexOf('</table>', html.indexOf('<table class="data compact latency">')));
    for (const name of ['E2E', 'TTFT', 'TPOT', 'ITL p50', 'ITL p99', 'ITL max', 'output tokens/s']) assert.ok(table.includes(`<th scope="row">${name} `), `${name} row`);
    assert.match(table, /candidate<\/span><\/td><td class="num">6<\/td><td class="num">25\.0 tok\/s<\/td>/);
    assert.match(table, /<td class="num">206\.0 ms<\/td><\/tr>/);
  });

  it('travel in the pairs export on both sides', () => {
    const lines = renderPairsJsonl(pairs(4))
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as PairExportLine);
    assert.deepEqual(lines[0]!.stable.itl, itl(20, 30, 35));
    assert.equal(lines[0]!.stable.outputTokensPerSec, 50);
    assert.deepEqual(lines[2]!.candidate.itl, itl(40, 102, 202));
    assert.equal(lines[3]!.candidate.itl, null);
    assert.equal(lines[3]!.candidate.outputTokensPerSec, null);
  });
});
