import { escapeHtml as esc } from './html-escape.js';
import type { Interval } from './report-schema.js';

/**
 * Inline SVG plots for the HTML report, drawn in TypeScript: no script, no font, nothing
 * fetched. Each plot is an `<svg class="plot" data-plot="…">` with a `viewBox`, so it scales
 * with the page and prints sharply. Element classes (`series`, `bar`, `estimate`, `whisker`,
 * `empty`) are stable: the tests count them.
 */

/** Colours of the two sides and of the neutral marks; the stylesheet uses the same values. */
export const PlotColor = {
  stable: '#2563eb',
  candidate: '#ea580c',
  neutral: '#0f766e',
  good: '#15803d',
  bad: '#b91c1c',
  warn: '#b45309',
  muted: '#94a3b8',
  axis: '#475569',
  grid: '#e2e8f0',
  text: '#1f2937',
} as const;
type Color = (typeof PlotColor)[keyof typeof PlotColor];

const WIDTH = 560;
const FONT = 12;

interface Frame {
  width: number;
  height: number;
  left: number;
  right: number;
  top: number;
  bottom: number;
}

interface Scale {
  (value: number): number;
  ticks: number[];
  label: (value: number) => string;
  log: boolean;
}

/** Coordinates with one decimal: plenty for a viewBox, and keeps the file small. */
function c(value: number): string {
  return String(Math.round(value * 10) / 10);
}

function svgOpen(id: string, frame: Frame, label: string, extraClass: string): string {
  return (
    `<svg class="plot ${extraClass}" data-plot="${esc(id)}" viewBox="0 0 ${frame.width} ${frame.height}" role="img" ` +
    `aria-label="${esc(label)}" font-size="${FONT}">` +
    `<title>${esc(label)}</title>`
  );
}

function text(x: number, y: number, content: string, attrs = ''): string {
  return `<text x="${c(x)}" y="${c(y)}"${attrs === '' ? '' : ` ${attrs}`}>${esc(content)}</text>`;
}

/** "no data", "judge not run": said in the plot area rather than drawing anything made up. */
function emptyPlot(id: string, label: string, message: string, height = 200): string {
  const frame: Frame = { width: WIDTH, height, left: 0, right: 0, top: 0, bottom: 0 };
  return (
    svgOpen(id, frame, label, 'plot-empty') +
    `<rect x="1" y="1" width="${WIDTH - 2}" height="${height - 2}" rx="6" fill="#f8fafc" stroke="${PlotColor.grid}" stroke-dasharray="4 4"/>` +
    text(WIDTH / 2, height / 2 + 5, message, `class="empty" text-anchor="middle" fill="${PlotColor.axis}" font-size="15"`) +
    '</svg>'
  );
}

/** A step of 1, 2 or 5 × 10^k near `span / count`. */
export function niceStep(span: number, count: number): number {
  if (!(span > 0) || !Number.isFinite(span)) return 1;
  const raw = span / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const fraction = raw / power;
  return (fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10) * power;
}

/** Tick label: as many decimals as the step needs, no floating-point noise. */
function tickFormatter(step: number, unit = ''): (value: number) => string {
  const decimals = Math.max(0, Math.min(6, -Math.floor(Math.log10(step) + 1e-9)));
  return (value) => `${Number(value.toPrecision(12)).toLocaleString('en-US', { maximumFractionDigits: decimals, minimumFractionDigits: 0 })}${unit}`;
}

function linearScale(min: number, max: number, from: number, to: number, ticks = 6, unit = ''): Scale {
  let lo = min;
  let hi = max;
  if (hi - lo <= 0) {
    const pad = Math.abs(lo) > 0 ? Math.abs(lo) * 0.1 : 1;
    lo -= pad;
    hi += pad;
  }
  const step = niceStep(hi - lo, ticks);
  lo = Math.floor(lo / step + 1e-9) * step;
  hi = Math.ceil(hi / step - 1e-9) * step;
  const scale = ((value: number) => from + ((value - lo) / (hi - lo)) * (to - from)) as Scale;
  scale.ticks = [];
  for (let tick = lo; tick <= hi + step / 2; tick += step) scale.ticks.push(Number(tick.toPrecision(12)));
  scale.label = tickFormatter(step, unit);
  scale.log = false;
  return scale;
}

function logScale(min: number, max: number, from: number, to: number): Scale {
  const lo = Math.log10(min);
  const hi = Math.log10(max);
  const scale = ((value: number) => from + ((Math.log10(Math.max(value, min)) - lo) / (hi - lo)) * (to - from)) as Scale;
  const decades: number[] = [];
  for (let power = Math.floor(lo); power <= Math.ceil(hi); power++) decades.push(power);
  const multipliers = decades.length <= 3 ? [1, 2, 5] : [1];
  scale.ticks = decades.flatMap((power) => multipliers.map((m) => m * 10 ** power)).filter((tick) => tick >= min * 0.999 && tick <= max * 1.001);
  scale.label = (value) => Number(value.toPrecision(6)).toLocaleString('en-US', { maximumFractionDigits: 3 });
  scale.log = true;
  return scale;
}

function xAxis(scale: Scale, frame: Frame, label: string): string {
  const y = frame.height - frame.bottom;
  let out = `<g class="axis x" fill="${PlotColor.axis}">`;
  for (const tick of scale.ticks) {
    const x = scale(tick);
    out += `<line x1="${c(x)}" x2="${c(x)}" y1="${frame.top}" y2="${c(y)}" stroke="${PlotColor.grid}"/>`;
    out += `<line x1="${c(x)}" x2="${c(x)}" y1="${c(y)}" y2="${c(y + 4)}" stroke="${PlotColor.axis}"/>`;
    out += text(x, y + 17, scale.label(tick), 'text-anchor="middle"');
  }
  out += `<line x1="${frame.left}" x2="${frame.width - frame.right}" y1="${c(y)}" y2="${c(y)}" stroke="${PlotColor.axis}"/>`;
  if (label !== '') out += text((frame.left + frame.width - frame.right) / 2, y + 37, label, `text-anchor="middle" fill="${PlotColor.text}"`);
  return `${out}</g>`;
}

function yAxis(scale: Scale, frame: Frame, label: string): string {
  let out = `<g class="axis y" fill="${PlotColor.axis}">`;
  for (const tick of scale.ticks) {
    const y = scale(tick);
    out += `<line x1="${frame.left}" x2="${frame.width - frame.right}" y1="${c(y)}" y2="${c(y)}" stroke="${PlotColor.grid}"/>`;
    out += text(frame.left - 6, y + 4, scale.label(tick), 'text-anchor="end"');
  }
  out += `<line x1="${frame.left}" x2="${frame.left}" y1="${frame.top}" y2="${frame.height - frame.bottom}" stroke="${PlotColor.axis}"/>`;
  const middle = (frame.top + frame.height - frame.bottom) / 2;
  out += text(14, middle, label, `text-anchor="middle" fill="${PlotColor.text}" transform="rotate(-90 14 ${c(middle)})"`);
  return `${out}</g>`;
}

/** Generous width of a label at the plots' font size, for placing it (there are no font metrics without a browser). */
function textWidth(label: string, bold = false): number {
  return label.length * (bold ? 7.4 : 6.8);
}

function legend(x: number, y: number, entries: readonly { color: string; label: string }[]): string {
  let out = '<g class="legend">';
  entries.forEach((entry, index) => {
    const rowY = y + 13 + index * 18;
    out += `<line x1="${c(x)}" x2="${c(x + 18)}" y1="${c(rowY - 4)}" y2="${c(rowY - 4)}" stroke="${entry.color}" stroke-width="3"/>`;
    out += text(x + 24, rowY, entry.label, `fill="${PlotColor.text}"`);
  });
  return `${out}</g>`;
}

/** One side of a latency CDF. `values` sorted ascending (a report sample). */
export interface CdfSeries {
  side: 'stable' | 'candidate';
  values: readonly number[];
  label: string;
}

/**
 * Empirical CDFs as step polylines, one per series: 2 points per value (the riser and the
 * tread), so a series of k values has 2k points. Dashed guides at the 50th and 99th percentile.
 * The x axis turns logarithmic when all values are positive and span more than 20×.
 */
export function cdfPlot(id: string, label: string, axisLabel: string, series: readonly CdfSeries[]): string {
  const drawn = series.filter((entry) => entry.values.length > 0);
  if (drawn.length === 0) return emptyPlot(id, label, 'no data: no pairs where both sides answered');
  // The legend sits under the x axis: inside the plot it would hide part of a curve sooner or later.
  const legendHeight = drawn.length * 18;
  const frame: Frame = { width: WIDTH, height: 300 + legendHeight + 8, left: 58, right: 18, top: 14, bottom: 46 + legendHeight + 8 };
  const all = drawn.flatMap((entry) => [entry.values[0]!, entry.values.at(-1)!]);
  const min = Math.min(...all);
  const max = Math.max(...all);
  const log = min > 0 && max / min > 20;
  const x = log ? logScale(min, max, frame.left, WIDTH - frame.right) : linearScale(Math.min(0, min), max, frame.left, WIDTH - frame.right, 6);
  const y = linearScale(0, 1, frame.height - frame.bottom, frame.top, 4);
  y.label = (value) => `${Math.round(value * 100)}%`;

  let out = svgOpen(id, frame, label, 'plot-cdf');
  out += xAxis(x, frame, log ? `${axisLabel} (log scale)` : axisLabel);
  out += yAxis(y, frame, 'requests at or below');
  for (const [quantile, name] of [
    [0.5, 'p50'],
    [0.99, 'p99'],
  ] as const) {
    out += `<line class="guide" x1="${frame.left}" x2="${WIDTH - frame.right}" y1="${c(y(quantile))}" y2="${c(y(quantile))}" stroke="${PlotColor.axis}" stroke-dasharray="3 4" stroke-opacity="0.7"/>`;
    // Left end: a CDF is below its p50 and p99 there, so the label is never under a curve.
    out += text(frame.left + 4, y(quantile) - 4, name, `fill="${PlotColor.axis}"`);
  }
  for (const entry of drawn) {
    const k = entry.values.length;
    const points: string[] = [];
    entry.values.forEach((value, index) => {
      const px = c(x(value));
      points.push(`${px},${c(y(index / k))}`, `${px},${c(y((index + 1) / k))}`);
    });
    out += `<polyline class="series series-${entry.side}" data-values="${k}" fill="none" stroke="${PlotColor[entry.side]}" stroke-width="2.5" stroke-linejoin="round" points="${points.join(' ')}"/>`;
  }
  out += legend(
    frame.left,
    frame.height - legendHeight - 8,
    drawn.map((entry) => ({ color: PlotColor[entry.side], label: entry.label })),
  );
  return `${out}</svg>`;
}

/** A vertical marker of a histogram: a value and, optionally, its interval drawn as a band. */
export interface Marker {
  value: number;
  label: string;
  color: Color;
  ci?: Interval | null;
}

/**
 * A histogram of per-request values (a report sample), heights as the share of requests so a
 * thinned sample reads the same as the full one. Outliers would squeeze the bulk into one bar,
 * so the axis stops at 3 interquartile ranges beyond the quartiles (Tukey's far fences); values
 * beyond are counted at the plot's edge and in the returned note, never dropped silently.
 */
export function histogramPlot(id: string, label: string, axisLabel: string, values: readonly number[], markers: readonly Marker[]): { svg: string; note: string | null } {
  if (values.length === 0) return { svg: emptyPlot(id, label, 'no data: no paired requests'), note: null };
  const frame: Frame = { width: WIDTH, height: 310, left: 58, right: 18, top: 44, bottom: 46 };
  const k = values.length;
  const q1 = values[Math.floor(0.25 * (k - 1))]!;
  const q3 = values[Math.ceil(0.75 * (k - 1))]!;
  const spread = Math.max(q3 - q1, 1e-9);
  const inside = values.filter((value) => value >= q1 - 3 * spread && value <= q3 + 3 * spread);
  let lo = inside[0]!;
  let hi = inside.at(-1)!;
  const below = values.filter((value) => value < lo).length;
  const above = values.filter((value) => value > hi).length;
  const note = below + above === 0 ? null : `axis stops 3 interquartile ranges beyond the quartiles: ${below} value(s) below and ${above} above it are counted at the edges, not drawn (${formatShare((below + above) / k)} of the sample)`;
  lo = Math.min(lo, 0);
  hi = Math.max(hi, 0);
  const width = hi === lo ? 1 : niceStep(hi - lo, Math.min(40, Math.max(8, Math.ceil(Math.sqrt(k)))));
  const start = Math.floor(lo / width) * width;
  const binCount = Math.max(1, Math.floor((hi - start) / width + 1e-9) + 1);
  const end = start + binCount * width;
  const bins = new Array<number>(binCount).fill(0);
  for (const value of values) {
    if (value < lo || value > hi) continue;
    bins[Math.min(binCount - 1, Math.floor((value - start) / width + 1e-9))]!++;
  }
  const x = linearScale(start, end, frame.left, WIDTH - frame.right, 7);
  const y = linearScale(0, (Math.max(...bins) / k) * 100, frame.height - frame.bottom, frame.top, 4, '%');
  const base = frame.height - frame.bottom;

  let out = svgOpen(id, frame, label, 'plot-histogram');
  out += xAxis(x, frame, axisLabel);
  out += yAxis(y, frame, 'share of requests');
  out += `<g class="bars" data-bins="${binCount}" fill="${PlotColor.neutral}" fill-opacity="0.78">`;
  bins.forEach((count, index) => {
    if (count === 0) return;
    const left = x(start + index * width);
    const right = x(start + (index + 1) * width);
    const top = y((count / k) * 100);
    out += `<rect class="bar" x="${c(left + 0.5)}" y="${c(top)}" width="${c(Math.max(0.8, right - left - 1))}" height="${c(base - top)}"><title>${esc(`${formatShare(count / k)} of requests from ${x.label(start + index * width)} to ${x.label(start + (index + 1) * width)}`)}</title></rect>`;
  });
  out += '</g>';
  if (below > 0) out += text(frame.left + 4, frame.top + 12, `← ${below} more`, `class="overflow" fill="${PlotColor.axis}"`);
  if (above > 0) out += text(WIDTH - frame.right - 4, frame.top + 12, `${above} more →`, `class="overflow" text-anchor="end" fill="${PlotColor.axis}"`);
  const placed = [...markers].map((marker) => ({ marker, at: x(Math.min(Math.max(marker.value, start), end)) }));
  const rightmost = Math.max(...placed.map((entry) => entry.at));
  placed.forEach(({ marker, at }, index) => {
    if (marker.ci) {
      const left = x(Math.max(marker.ci.low, start));
      const right = x(Math.min(marker.ci.high, end));
      out += `<rect class="marker-ci" x="${c(Math.min(left, right))}" y="${frame.top}" width="${c(Math.max(1, Math.abs(right - left)))}" height="${c(base - frame.top)}" fill="${marker.color}" fill-opacity="0.16"/>`;
    }
    out += `<line class="marker" x1="${c(at)}" x2="${c(at)}" y1="${frame.top - 8}" y2="${c(base)}" stroke="${marker.color}" stroke-width="2"${index === 0 ? '' : ' stroke-dasharray="5 3"'}/>`;
    // Labels on two rows above the plot; each grows away from the other marker when there is room.
    const wantsLeft = placed.length > 1 && at < rightmost;
    const labelWidth = textWidth(marker.label, true);
    const fitsLeft = at - labelWidth - 6 > 4;
    const fitsRight = at + labelWidth + 6 <= WIDTH;
    const y = frame.top - 26 + index * 14;
    const style = `fill="${marker.color}" font-weight="600"`;
    if (fitsLeft && (wantsLeft || !fitsRight)) out += text(at - 5, y, marker.label, `text-anchor="end" ${style}`);
    else if (fitsRight) out += text(at + 5, y, marker.label, `text-anchor="start" ${style}`);
    // Too long for either side of its marker: kept whole inside the plot, as far right as it fits.
    else out += text(Math.max(4, WIDTH - labelWidth - 4), y, marker.label, `text-anchor="start" ${style}`);
  });
  return { svg: `${out}</svg>`, note };
}

/** One horizontal bar of {@link barChart}. */
export interface Bar {
  label: string;
  value: number;
  color: Color;
  /** Printed right of the bar. */
  valueLabel: string;
}

/** Horizontal bars on a linear axis from 0, labelled on the left, values on the right. */
export function barChart(id: string, label: string, bars: readonly Bar[]): string {
  const rowHeight = 22;
  const frame: Frame = { width: WIDTH, height: bars.length * rowHeight + 40, left: 128, right: 70, top: 8, bottom: 32 };
  const max = Math.max(1, ...bars.map((bar) => bar.value));
  const x = linearScale(0, max, frame.left, WIDTH - frame.right, 5);
  let out = svgOpen(id, frame, label, 'plot-bars');
  out += xAxis(x, frame, '');
  bars.forEach((bar, index) => {
    const top = frame.top + index * rowHeight + 4;
    const right = x(bar.value);
    out += text(frame.left - 8, top + 13, bar.label, `text-anchor="end" fill="${bar.value === 0 ? PlotColor.muted : PlotColor.text}"`);
    if (bar.value > 0) {
      out += `<rect class="bar" data-value="${bar.value}" x="${frame.left}" y="${c(top)}" width="${c(Math.max(1.5, right - frame.left))}" height="${rowHeight - 8}" rx="2" fill="${bar.color}"/>`;
    }
    out += text(Math.max(right, frame.left) + 6, top + 13, bar.valueLabel, `fill="${bar.value === 0 ? PlotColor.muted : PlotColor.text}"`);
  });
  return `${out}</svg>`;
}

/** One estimate on an interval plot: a dot and its whisker. */
export interface IntervalPoint {
  value: number;
  ci: Interval | null;
  color: Color;
}

/** One row of {@link intervalPlot}: a label, its estimates (none: "no data") and the text on the right. */
export interface IntervalRow {
  label: string;
  points: readonly IntervalPoint[];
  valueLabel: string;
  /** Drawn as a bar from 0 under the dot. */
  bar?: boolean;
}

/** Layout of {@link intervalPlot}, in viewBox units. */
export interface IntervalPlotOptions {
  /** A dashed vertical line, e.g. parity at 50%. */
  reference?: { value: number; label: string };
  /** @defaultValue 560 */
  width?: number;
  /** Room for the row labels. @defaultValue 200 */
  labelWidth?: number;
  /** Room for the values right of the axis. @defaultValue 150 */
  valueWidth?: number;
}

/**
 * Dots with 95% whiskers on a 0–100% axis, one row per estimate; a row without data says so
 * instead of drawing a dot.
 */
export function intervalPlot(id: string, label: string, rows: readonly IntervalRow[], options: IntervalPlotOptions = {}): string {
  const rowHeight = 26;
  const width = options.width ?? WIDTH;
  const top = options.reference ? 24 : 10;
  const frame: Frame = { width, height: rows.length * rowHeight + top + 34, left: options.labelWidth ?? 200, right: options.valueWidth ?? 150, top, bottom: 32 };
  const x = linearScale(0, 1, frame.left, width - frame.right, 4);
  x.label = (value) => `${Math.round(value * 100)}%`;
  let out = svgOpen(id, frame, label, 'plot-intervals');
  out += xAxis(x, frame, '');
  if (options.reference) {
    const rx = x(options.reference.value);
    out += `<line class="reference" x1="${c(rx)}" x2="${c(rx)}" y1="${frame.top}" y2="${frame.height - frame.bottom}" stroke="${PlotColor.axis}" stroke-dasharray="4 3"/>`;
  }
  rows.forEach((row, index) => {
    const middle = frame.top + index * rowHeight + rowHeight / 2 + 2;
    if (index % 2 === 1) out += `<rect x="0" y="${c(middle - rowHeight / 2)}" width="${width}" height="${rowHeight}" fill="#f8fafc" fill-opacity="0.8"/>`;
    out += text(frame.left - 10, middle + 4, row.label, `text-anchor="end" fill="${PlotColor.text}"`);
    if (row.points.length === 0) {
      out += text((frame.left + width - frame.right) / 2, middle + 4, 'no data', `class="empty" text-anchor="middle" fill="${PlotColor.muted}" font-style="italic"`);
    }
    row.points.forEach((point, pointIndex) => {
      const offset = row.points.length > 1 ? (pointIndex - (row.points.length - 1) / 2) * 7 : 0;
      const py = middle + offset;
      if (row.bar === true) {
        out += `<rect class="bar" x="${frame.left}" y="${c(py - 7)}" width="${c(Math.max(0, x(point.value) - frame.left))}" height="14" fill="${point.color}" fill-opacity="0.25"/>`;
      }
      if (point.ci) {
        const low = x(point.ci.low);
        const high = x(point.ci.high);
        out += `<line class="whisker" x1="${c(low)}" x2="${c(high)}" y1="${c(py)}" y2="${c(py)}" stroke="${point.color}" stroke-width="2"/>`;
        out += `<line x1="${c(low)}" x2="${c(low)}" y1="${c(py - 5)}" y2="${c(py + 5)}" stroke="${point.color}" stroke-width="2"/>`;
        out += `<line x1="${c(high)}" x2="${c(high)}" y1="${c(py - 5)}" y2="${c(py + 5)}" stroke="${point.color}" stroke-width="2"/>`;
      }
      out += `<circle class="estimate" cx="${c(x(point.value))}" cy="${c(py)}" r="4.5" fill="${point.color}" stroke="#ffffff" stroke-width="1.5"/>`;
    });
    out += text(width - frame.right + 10, middle + 4, row.valueLabel, `fill="${row.points.length === 0 ? PlotColor.muted : PlotColor.text}"`);
  });
  if (options.reference) {
    const rx = x(options.reference.value);
    out += text(rx, 14, options.reference.label, `text-anchor="middle" fill="${PlotColor.axis}" font-size="11"`);
  }
  return `${out}</svg>`;
}

/** Placeholder in the plot area for a plot whose data the report does not hold. */
export function unavailablePlot(id: string, label: string, message: string, height?: number): string {
  return emptyPlot(id, label, message, height);
}

function formatShare(value: number): string {
  return `${(value * 100).toFixed(1)}%`;
}
