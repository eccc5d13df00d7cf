import type { ResponseError, SamplingDecision } from '@shadow-replay/contracts';

/**
 * What the live path hands to the publisher thread about one exchange: the request body and
 * the answer's bytes as they were relayed, with the time each chunk arrived. Times are in ms on
 * the live path's monotonic clock, relative to the moment the request was sent upstream (a
 * worker thread's `performance.now()` has another origin, so no absolute reading crosses over).
 */
export interface CapturedExchange {
  requestId: string;
  /** Epoch ms when the request was sent to the stable model. */
  occurredAt: number;
  /** Only the request headers the publisher may look at (allowlist, tenant, conversation). */
  headers: Record<string, string | string[]>;
  /** The live path's sampling decision (rate and key); the model filter is the thread's. */
  sampling: SamplingDecision;
  status: number | null;
  failure: ResponseError | null;
  streamed: boolean;
  aborted: boolean;
  /** The request body followed by every answer chunk, in one buffer that is transferred, not copied. */
  bytes: ArrayBuffer;
  bodyLength: number;
  /** Length of each answer chunk, in order after the body. */
  chunkLengths: number[];
  /** Arrival of each answer chunk. */
  chunkTimes: number[];
  /** End of the answer (last byte, or the failure). */
  endAt: number;
}

export interface CaptureInput extends Omit<CapturedExchange, 'bytes' | 'bodyLength' | 'chunkLengths'> {
  body: Buffer;
  chunks: Buffer[];
}

/** Bytes an exchange takes once packed: known before anything is copied. */
export function captureSize(input: Pick<CaptureInput, 'body' | 'chunks'>): number {
  let size = input.body.length;
  for (const chunk of input.chunks) size += chunk.length;
  return size;
}

/**
 * Packs an exchange into one unpooled buffer: `postMessage` copies a view's whole underlying
 * ArrayBuffer (an 8 KiB pool slab for small Buffers), so the parts are copied once here and the
 * result is transferred.
 */
export function packExchange(input: CaptureInput): CapturedExchange {
  let size = input.body.length;
  const chunkLengths: number[] = new Array<number>(input.chunks.length);
  for (let index = 0; index < input.chunks.length; index++) {
    const length = (input.chunks[index] as Buffer).length;
    chunkLengths[index] = length;
    size += length;
  }
  const packed = Buffer.allocUnsafeSlow(size);
  let offset = input.body.copy(packed, 0);
  for (const chunk of input.chunks) offset += chunk.copy(packed, offset);
  return {
    requestId: input.requestId,
    occurredAt: input.occurredAt,
    headers: input.headers,
    sampling: input.sampling,
    status: input.status,
    failure: input.failure,
    streamed: input.streamed,
    aborted: input.aborted,
    bytes: packed.buffer,
    bodyLength: input.body.length,
    chunkLengths,
    chunkTimes: input.chunkTimes,
    endAt: input.endAt,
  };
}

/** Messages from the live path to the publisher thread. */
export type ToPublisher =
  | { type: 'capture'; items: CapturedExchange[] }
  | { type: 'sync'; id: number }
  | { type: 'close'; deadlineMs: number }
  /** Tests: the thread blocks until the flag's first int32 is set, as a thread starved of CPU would. */
  | { type: 'stall'; flag: SharedArrayBuffer };

/**
 * Why events were dropped. `handoff_full`: the publisher thread had not taken in what the live
 * path handed it before (`gateway.handoff`); `publisher_failed`: the thread stopped; the live
 * path drops what it would have handed over.
 */
export type DropReason = 'buffer_full' | 'send_failed' | 'shutdown' | 'publisher_failed' | 'handoff_full';

/** Counts since the previous report; the live path adds them to its metrics. */
export interface CountsReport {
  /** Exchanges the thread took in (each one becomes two events, or a count of why not). */
  taken: number;
  /** Packed bytes of the exchanges taken in. */
  takenBytes: number;
  sent: number;
  dropped: Partial<Record<DropReason, number>>;
  unpublishable: Record<string, number>;
  notShadowed: Record<string, number>;
  depth: number;
  bytes: number;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** Messages from the publisher thread to the live path. */
export type FromPublisher =
  | { type: 'ready' }
  | { type: 'counts'; counts: CountsReport }
  | { type: 'synced'; id: number }
  | { type: 'log'; level: LogLevel; obj: Record<string, unknown>; msg: string | undefined }
  | { type: 'closed' };
