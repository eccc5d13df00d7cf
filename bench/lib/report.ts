/**
 * What every benchmark prints and writes: a Markdown table on the terminal (pasteable as is)
 * and one JSON file under `bench/results/` with the machine, the parameters and every figure.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { percentile as percentileType7 } from '@shadow-replay/evaluation';

export const RESULTS_DIR = fileURLToPath(new URL('../results/', import.meta.url));

/** The `q` quantile (type 7, as in the experiment report) or null for an empty sample. */
export function percentile(values: readonly number[], q: number): number | null {
  return values.length === 0 ? null : percentileType7(values, q);
}

/** The median of the values that are present; null when none is. */
export function median(values: ReadonlyArray<number | null | undefined>): number | null {
  const present = values.filter((value): value is number => typeof value === 'number' && Number.isFinite(value));
  return percentile(present, 0.5);
}

export interface LatencySummary {
  n: number;
  min: number | null;
  mean: number | null;
  p50: number | null;
  p90: number | null;
  p99: number | null;
  max: number | null;
}

export function summarizeLatency(valuesMs: readonly number[]): LatencySummary {
  if (valuesMs.length === 0) return { n: 0, min: null, mean: null, p50: null, p90: null, p99: null, max: null };
  let sum = 0;
  let min = Infinity;
  let max = -Infinity;
  for (const value of valuesMs) {
    sum += value;
    min = Math.min(min, value);
    max = Math.max(max, value);
  }
  return { n: valuesMs.length, min, mean: sum / valuesMs.length, p50: percentile(valuesMs, 0.5), p90: percentile(valuesMs, 0.9), p99: percentile(valuesMs, 0.99), max };
}

/** `a / b`, or null when either is missing or b is 0. */
export function ratio(a: number | null | undefined, b: number | null | undefined): number | null {
  return typeof a === 'number' && typeof b === 'number' && b !== 0 ? a / b : null;
}

/** A number with fixed decimals, or "–" when absent. */
export function fmt(value: number | null | undefined, digits = 1): string {
  return typeof value === 'number' && Number.isFinite(value) ? value.toFixed(digits) : '–';
}

export interface Column<Row> {
  header: string;
  value: (row: Row) => string;
  /** @defaultValue 'right' */
  align?: 'left' | 'right';
}

/**
 * A Markdown table padded to line up in a terminal. Rows in `footer` (e.g. the median) come
 * after the body, which is enough to tell them apart without a second separator that
 * Markdown would render as a row of dashes.
 */
export function renderTable<Row>(columns: ReadonlyArray<Column<Row>>, rows: readonly Row[], footer: readonly Row[] = []): string {
  const cells = [...rows, ...footer].map((row) => columns.map((column) => column.value(row)));
  const widths = columns.map((column, index) => Math.max(column.header.length, 3, ...cells.map((line) => line[index]?.length ?? 0)));
  const pad = (text: string, index: number) => {
    const width = widths[index] ?? 0;
    return columns[index]?.align === 'left' ? text.padEnd(width) : text.padStart(width);
  };
  const line = (texts: readonly string[]) => `| ${texts.map(pad).join(' | ')} |`;
  const rule = `|${widths.map((width, index) => (columns[index]?.align === 'left' ? `:${'-'.repeat(width + 1)}` : `${'-'.repeat(width + 1)}:`)).join('|')}|`;
  return [line(columns.map((column) => column.header)), rule, ...cells.map(line)].join('\n');
}

export interface MachineInfo {
  cpus: number;
  cpuModel: string;
  node: string;
  platform: string;
  arch: string;
  totalMemoryMb: number;
  /** 1, 5 and 15 minute load averages when the benchmark started: how busy the shared machine was. */
  loadAverage: number[];
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? 'unknown',
    node: process.version,
    platform: os.platform(),
    arch: os.arch(),
    totalMemoryMb: Math.round(os.totalmem() / 1024 / 1024),
    loadAverage: os.loadavg().map((value) => Math.round(value * 100) / 100),
  };
}

/**
 * Writes `bench/results/<name>-<ISO timestamp>.json` and returns its path. The timestamp's
 * ":" and "." become "-" so the name is valid on every file system.
 */
export async function writeResults(name: string, startedAt: Date, data: unknown): Promise<string> {
  await mkdir(RESULTS_DIR, { recursive: true });
  const path = join(RESULTS_DIR, `${name}-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
  await writeFile(path, `${JSON.stringify(data, null, 2)}\n`);
  return path;
}
