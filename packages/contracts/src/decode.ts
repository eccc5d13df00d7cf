import { isUtf8 } from 'node:buffer';
import type { z } from 'zod';

export type DecodeResult<T> =
  /** `json`: the parsed JSON before validation, unknown fields kept (the schema's output is a copy). */
  | { ok: true; value: T; json: unknown }
  | { ok: false; reason: string };

const MAX_REASON = 1000;

/**
 * Deepest nesting of objects and arrays an event may have. JSON.parse reads any depth, but
 * JSON.stringify, structuredClone and every recursive walk overflow the stack a few thousand
 * levels down, so a deeper record that passed decoding would fail later, on every redelivery.
 * Real events stay far below this; a PairJob wraps an event in one more level.
 */
export const MAX_NESTING_DEPTH = 128;

/**
 * Parses a Kafka value as JSON and validates it. Never throws: undecodable input is poison,
 * and poison becomes a dead letter with this reason rather than an exception that loops.
 */
export function decodeEvent<S extends z.ZodType>(schema: S, bytes: Buffer | string | null | undefined): DecodeResult<z.infer<S>> {
  if (bytes === null || bytes === undefined || bytes.length === 0) {
    return { ok: false, reason: 'empty_value: the record has no value' };
  }
  // toString('utf8') would quietly turn invalid bytes into U+FFFD and accept the record.
  if (typeof bytes !== 'string' && !isUtf8(bytes)) {
    return { ok: false, reason: `invalid_utf8: the value (${bytes.length} bytes) is not valid UTF-8` };
  }
  let json: unknown;
  try {
    json = JSON.parse(typeof bytes === 'string' ? bytes : bytes.toString('utf8'));
  } catch (error) {
    return { ok: false, reason: truncate(`invalid_json: ${(error as Error).message}`) };
  }
  if (nestedDeeperThan(json, MAX_NESTING_DEPTH)) {
    return { ok: false, reason: `nesting_too_deep: objects and arrays nested more than ${MAX_NESTING_DEPTH} levels deep` };
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    return { ok: false, reason: truncate(`schema_invalid: ${describeIssues(parsed.error.issues)}`) };
  }
  return { ok: true, value: parsed.data, json };
}

/**
 * True when objects or arrays are nested more than `limit` levels deep (the root container is
 * level 1). The recursion stops at `limit`, so it is safe on any input. Byte arrays count as
 * values, not containers.
 */
export function nestedDeeperThan(value: unknown, limit: number): boolean {
  if (typeof value !== 'object' || value === null || ArrayBuffer.isView(value)) return false;
  if (limit <= 0) return true;
  for (const child of Array.isArray(value) ? value : Object.values(value)) {
    if (nestedDeeperThan(child, limit - 1)) return true;
  }
  return false;
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
