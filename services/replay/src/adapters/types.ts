import type { RequestEvent, ResponseEvent } from '@shadow-replay/contracts';
import type { ConsumedRecord } from '@shadow-replay/platform';

/** What one consumed record becomes. */
export interface AdaptedRecord {
  request: RequestEvent;
  /** The live answer, present when the record is a "combined" log of request and response. */
  stable?: ResponseEvent;
}

/**
 * The result for input that was read: an event, or poison with a reason for the dead-letter
 * topic. Infrastructure failures are not results: `adapt` rejects with a retryable
 * {@link InputAdapterError} so the consumer redoes the batch instead of dead-lettering.
 */
export type AdaptResult = { ok: true; value: AdaptedRecord } | { ok: false; reason: string };

/** Turns a record of a tapped topic into our events. */
export interface InputAdapter {
  readonly kind: string;
  /**
   * Never rejects for bad input (that is `{ ok: false, reason }`); rejects only with a
   * retryable error when something it depends on (the schema registry) is unavailable.
   */
  adapt(record: ConsumedRecord): Promise<AdaptResult>;
}

/**
 * First word of every poison reason (`<code>: <detail>`), so dead letters can be grouped.
 * `empty_value`, `invalid_utf8`, `invalid_json`, `nesting_too_deep` and `schema_invalid` are the
 * ones `decodeEvent` already uses.
 */
export const AdaptReason = {
  emptyValue: 'empty_value',
  invalidJson: 'invalid_json',
  schemaInvalid: 'schema_invalid',
  mappingMissing: 'mapping_missing',
  mappingInvalid: 'mapping_invalid',
  notConfluentFramed: 'not_confluent_framed',
  truncatedFrame: 'truncated_frame',
  registry: 'registry',
  unsupportedSchemaType: 'unsupported_schema_type',
  registryDecode: 'registry_decode',
  invalidUtf8: 'invalid_utf8',
  nestingTooDeep: 'nesting_too_deep',
} as const;
export type AdaptReason = (typeof AdaptReason)[keyof typeof AdaptReason];

const MAX_REASON = 1000;

export function poison(code: AdaptReason, detail: string): { ok: false; reason: string } {
  const reason = `${code}: ${detail}`;
  return { ok: false, reason: reason.length <= MAX_REASON ? reason : `${reason.slice(0, MAX_REASON - 1)}…` };
}
