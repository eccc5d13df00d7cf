import type { Comparison } from '@shadow-replay/contracts';
import { z } from 'zod';

const fraction = z.number().min(0).max(1);
const bySide = <T extends z.ZodType>(schema: T) => z.object({ stable: schema, candidate: schema });

/**
 * Schemas of the comparison fields that are not in the v1 `Comparison` contract (see
 * `PairComparison`). Records come from Kafka and may have been written by an older or newer
 * evaluator, so each field is read on its own: one that is absent or malformed is skipped
 * without discarding the others.
 */
export const ComparisonExtrasSchema = {
  toolCallAgreement: z.boolean(),
  editSimilarity: fraction.nullable(),
  rougeLF1: fraction.nullable(),
  jsonValid: bySide(z.boolean().nullable()),
  jsonDiff: z.looseObject({ added: z.number().int().nonnegative(), removed: z.number().int().nonnegative(), changed: z.number().int().nonnegative() }).nullable(),
  refusal: bySide(z.boolean().nullable()),
} as const;
type Extras = typeof ComparisonExtrasSchema;

/** One additive comparison field of a record, or undefined when it is absent or does not match its schema. */
export function readComparisonExtra<K extends keyof Extras>(comparison: Comparison, key: K): z.infer<Extras[K]> | undefined {
  const parsed = ComparisonExtrasSchema[key].safeParse(comparison[key]);
  return parsed.success ? (parsed.data as z.infer<Extras[K]>) : undefined;
}
