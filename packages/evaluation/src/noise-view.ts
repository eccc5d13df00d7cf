import { z } from 'zod';
import type { ArmReport, Report } from './report-schema.js';

/**
 * What the renderers read of an arm's `noise` (see `compareWithControl`). The report schema keeps
 * `noise` open so the comparison can grow; the renderers read it through this schema once and
 * ignore fields they do not know.
 */
const NoiseMetricViewSchema = z.looseObject({
  metric: z.string(),
  candidateRate: z.number(),
  controlRate: z.number(),
  relative: z.number(),
  absolute: z.number(),
  regression: z.boolean(),
});
const NoiseViewSchema = z.looseObject({
  controlArm: z.string(),
  relativeThreshold: z.number(),
  absoluteThreshold: z.number(),
  metrics: z.array(NoiseMetricViewSchema),
});
export type NoiseView = z.infer<typeof NoiseViewSchema>;
export type NoiseMetricView = z.infer<typeof NoiseMetricViewSchema>;

/** How an arm stands against the noise floor, for a renderer. */
export type NoiseStanding =
  | { kind: 'compared'; noise: NoiseView }
  /** The arm is the control: the noise floor itself. */
  | { kind: 'control' }
  | { kind: 'no_control' }
  /** `noise` is set but not in a shape this renderer knows. */
  | { kind: 'unreadable' };

/** Readable names of the disagreement metrics `compareWithControl` reports. */
export const NOISE_METRIC_NAMES: Readonly<Record<string, string>> = {
  exact_mismatch: 'answers differ (exact)',
  normalized_mismatch: 'answers differ (normalized)',
  finish_reason_disagreement: 'finish reasons differ',
  tool_call_disagreement: 'tool calls differ',
  judge_loss: 'judge prefers stable',
};

/** The report's control arm: the one the other arms' noise comparisons name. */
export function controlArmOf(report: Report): string | undefined {
  for (const arm of report.arms) {
    const parsed = NoiseViewSchema.safeParse(arm.noise);
    if (parsed.success) return parsed.data.controlArm;
  }
  return undefined;
}

export function noiseStanding(arm: ArmReport, controlArm: string | undefined): NoiseStanding {
  if (arm.noise === null) return arm.arm === controlArm ? { kind: 'control' } : { kind: 'no_control' };
  const parsed = NoiseViewSchema.safeParse(arm.noise);
  return parsed.success ? { kind: 'compared', noise: parsed.data } : { kind: 'unreadable' };
}
