import type { z } from 'zod';

export type DecodeResult<T> =
  | { ok: true; value: T }
  | { ok: false; reason: string };

const MAX_REASON = 1000;

/**
 * Parses a Kafka value as JSON and validates it. Never throws: undecodable input is poison,
 * and poison becomes a dead letter with this reason rather than an exception that loops.
 */
export function decodeEvent<S extends z.ZodType>(schema: S, bytes: Buffer | string | null | undefined): DecodeResult<z.infer<S>> {
  if (bytes === null || bytes === undefined || bytes.length === 0) {
    return { ok: false, reason: 'empty_value: the record has no value' };
  }
  let json: unknown;
  try {
    json = JSON.parse(typeof bytes === 'string' ? bytes : bytes.toString('utf8'));
  } catch (error) {
    return { ok: false, reason: truncate(`invalid_json: ${(error as Error).message}`) };
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    return { ok: false, reason: truncate(`schema_invalid: ${describeIssues(parsed.error.issues)}`) };
  }
  return { ok: true, value: parsed.data };
}

/** `path.to.field: message; …`, the form every boundary uses to report validation problems. */
export function describeIssues(issues: readonly z.core.$ZodIssue[]): string {
  return issues
    .slice(0, 5)
    .map((issue) => `${formatPath(issue.path)}: ${issue.message}`)
    .join('; ');
}

export function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(root)';
  return path
    .map((part, index) => (typeof part === 'number' ? `[${part}]` : `${index === 0 ? '' : '.'}${String(part)}`))
    .join('');
}

function truncate(text: string): string {
  return text.length <= MAX_REASON ? text : `${text.slice(0, MAX_REASON - 1)}…`;
}
