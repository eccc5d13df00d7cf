import { RequestEventSchema, decodeEvent, describeIssues } from '@shadow-replay/contracts';
import type { ConsumedRecord } from '@shadow-replay/platform';
import { AdaptReason, poison, type AdaptResult, type InputAdapter } from './types.js';

/** Our own JSON contract: the value is a RequestEvent, as the gateway publishes it. */
export class NativeAdapter implements InputAdapter {
  readonly kind = 'native';

  adapt(record: ConsumedRecord): Promise<AdaptResult> {
    const decoded = decodeEvent(RequestEventSchema, record.value);
    return Promise.resolve(decoded.ok ? { ok: true, value: { request: decoded.value } } : decoded);
  }
}

/** An already decoded object (from the schema registry) that must be a native RequestEvent. */
export function adaptNativeObject(value: unknown): AdaptResult {
  const parsed = RequestEventSchema.safeParse(value);
  return parsed.success ? { ok: true, value: { request: parsed.data } } : poison(AdaptReason.schemaInvalid, describeIssues(parsed.error.issues));
}
