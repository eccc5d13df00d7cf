import type { ArmReport } from './report-schema.js';

/** Thresholds of the noise-floor comparison (DESIGN §4). */
export interface NoiseOptions {
  /** |R − N| / (R + N) must exceed this. @defaultValue 0.2 */
  relativeThreshold?: number;
  /** |R − N| (rates) must exceed this. @defaultValue 0.03 */
  absoluteThreshold?: number;
}

export interface NoiseMetric {
  metric: string;
  /** Disagreement rate of the candidate with stable. */
  candidateRate: number;
  /** Disagreement rate of the control (stable asked again) with stable: the model's own noise. */
  controlRate: number;
  relative: number;
  absolute: number;
  regression: boolean;
}

export interface NoiseComparison {
  controlArm: string;
  relativeThreshold: number;
  absoluteThreshold: number;
  metrics: NoiseMetric[];
  regressions: string[];
}

type Figures = Pick<ArmReport, 'quality' | 'judge'>;

const DISAGREEMENTS: ReadonlyArray<[string, (figures: Figures) => { rate: number | null; n: number } | null]> = [
  ['exact_mismatch', (f) => complement(f.quality.exactMatch)],
  ['normalized_mismatch', (f) => complement(f.quality.normalizedMatch)],
  ['finish_reason_disagreement', (f) => complement(f.quality.finishReasonAgreement)],
  ['tool_call_disagreement', (f) => complement(f.quality.toolCallAgreement)],
  ['judge_loss', (f) => (f.judge.n === 0 ? null : { rate: f.judge.losses / f.judge.n, n: f.judge.n })],
];

/**
 * The Diffy idea for LLMs: a control arm sends the request to the stable model again, so its
 * disagreement with stable is the noise floor. A candidate regresses on a metric only when its
 * rate R exceeds the control's N by both a relative and an absolute margin.
 */
export function compareWithControl(candidate: Figures, control: Figures, controlArm: string, options: NoiseOptions = {}): NoiseComparison {
  const relativeThreshold = options.relativeThreshold ?? 0.2;
  const absoluteThreshold = options.absoluteThreshold ?? 0.03;
  const metrics: NoiseMetric[] = [];
  for (const [metric, read] of DISAGREEMENTS) {
    const r = read(candidate);
    const n = read(control);
    if (r === null || n === null || r.rate === null || n.rate === null || r.n === 0 || n.n === 0) continue;
    const absolute = r.rate - n.rate;
    const relative = r.rate + n.rate === 0 ? 0 : Math.abs(absolute) / (r.rate + n.rate);
    const regression = absolute > 0 && relative > relativeThreshold && absolute > absoluteThreshold;
    metrics.push({ metric, candidateRate: r.rate, controlRate: n.rate, relative, absolute, regression });
  }
  return { controlArm, relativeThreshold, absoluteThreshold, metrics, regressions: metrics.filter((m) => m.regression).map((m) => m.metric) };
}

function complement(proportion: { rate: number | null; n: number }): { rate: number | null; n: number } {
  return { rate: proportion.rate === null ? null : 1 - proportion.rate, n: proportion.n };
}
