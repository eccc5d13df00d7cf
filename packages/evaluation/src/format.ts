/** Number formatting shared by verdict reasons and the Markdown report. Null renders as an em dash. */

const NONE = '—';

export function formatMs(value: number | null): string {
  return value === null ? NONE : `${value.toFixed(1)} ms`;
}

export function formatSignedMs(value: number | null): string {
  if (value === null) return NONE;
  return `${value > 0 ? '+' : value < 0 ? '−' : '±'}${Math.abs(value).toFixed(1)} ms`;
}

/** A fraction as a percentage: 0.1234 → "12.3%". */
export function formatPercent(value: number | null, digits = 1): string {
  return value === null ? NONE : `${(value * 100).toFixed(digits)}%`;
}

/** A difference of two fractions in percentage points: 0.005 → "+0.50 pp". */
export function formatPp(value: number): string {
  const points = value * 100;
  return `${points < 0 ? '−' : '+'}${Math.abs(points).toFixed(2)} pp`;
}

export function formatRatio(value: number | null): string {
  return value === null ? NONE : `${value.toFixed(2)}×`;
}

export function formatCount(value: number | null): string {
  return value === null ? NONE : value.toLocaleString('en-US', { maximumFractionDigits: 1 });
}

/** USD with enough decimals that per-request costs of a fraction of a cent stay visible. */
export function formatUsd(value: number | null): string {
  if (value === null) return NONE;
  const digits = value >= 1 ? 2 : value >= 0.01 ? 4 : 6;
  return `$${value.toFixed(digits)}`;
}
