import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PlotColor, histogramPlot } from '../src/html-plots.js';

/** The x and anchor of each marker label (text drawn in a marker's colour, bold). */
function markerLabels(svg: string): { x: number; anchor: string; text: string }[] {
  return [...svg.matchAll(/<text x="([\d.-]+)" y="[\d.-]+" text-anchor="(start|end)" fill="#[0-9a-f]+" font-weight="600"[^>]*>([^<]*)<\/text>/g)].map((match) => ({
    x: Number(match[1]),
    anchor: match[2] ?? '',
    text: match[3] ?? '',
  }));
}

describe('histogramPlot marker labels', () => {
  const values = Array.from({ length: 200 }, (_, i) => -300 + i * 3);
  // Same rough width the plot assumes per bold character.
  const width = (label: string) => label.length * 7.4;

  it('keeps a label too long for either side of its marker whole inside the plot', () => {
    const label = 'median −123.1 ms [−134.6 ms, −110.7 ms] and a long note';
    const { svg } = histogramPlot('h', 'delta', 'ms', values, [{ value: -120, label, color: PlotColor.candidate }]);
    const [placed] = markerLabels(svg);
    assert.ok(placed, svg);
    const left = placed.anchor === 'start' ? placed.x : placed.x - width(placed.text);
    assert.ok(left >= 0 && left + width(placed.text) <= 560, `label spans ${left} to ${left + width(placed.text)} of 560`);
  });

  it('puts a short label beside its marker', () => {
    const { svg } = histogramPlot('h', 'delta', 'ms', values, [{ value: 0, label: 'median 0 ms', color: PlotColor.candidate }]);
    const [placed] = markerLabels(svg);
    assert.ok(placed);
    assert.equal(placed.anchor, 'start');
  });
});
