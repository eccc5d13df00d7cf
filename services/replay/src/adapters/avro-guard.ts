/**
 * Checks an Avro payload before avsc decodes it. avsc allocates and fills an array or map
 * with as many items as a block's count claims, reading zeros past the end of the buffer,
 * so a ten-byte record claiming 5·10^7 items blocks the event loop for seconds and takes
 * gigabytes before "truncated buffer" (and a larger count crashes the process). This walks
 * the payload with the writer schema and refuses counts the payload cannot hold; every other
 * problem is left to avsc, whose message stays the reason.
 */

/** The parts of an avsc `Type` read here (its public API: typeName, fields, itemsType, …). */
interface AvroTypeLike {
  readonly typeName: string;
  readonly fields?: ReadonlyArray<{ readonly type: AvroTypeLike }>;
  readonly itemsType?: AvroTypeLike;
  readonly valuesType?: AvroTypeLike;
  readonly types?: readonly AvroTypeLike[];
  readonly size?: number;
  readonly underlyingType?: AvroTypeLike;
}

/**
 * Items of zero encoded size (null, empty records) take no bytes, so a payload can legitimately
 * hold more items than bytes; this many extra are allowed in one record.
 */
const ZERO_SIZE_ITEMS = 100_000;

/** The walk cannot go on (truncated, unknown type, bad union index): avsc will say why. */
class Stop extends Error {}

class TooManyItems extends Error {}

interface Reader {
  readonly buf: Buffer;
  pos: number;
  items: number;
}

/** Why the payload cannot be what it claims, or undefined when avsc may decode it. */
export function avroBlockProblem(type: unknown, payload: Buffer): string | undefined {
  if (!isAvroType(type)) return undefined;
  try {
    skip(type, { buf: payload, pos: 0, items: 0 });
  } catch (error) {
    if (error instanceof TooManyItems) return error.message;
  }
  return undefined;
}

function isAvroType(value: unknown): value is AvroTypeLike {
  return typeof value === 'object' && value !== null && typeof (value as { typeName?: unknown }).typeName === 'string';
}

function skip(type: AvroTypeLike, r: Reader): void {
  const name = type.typeName.startsWith('union') ? 'union' : type.typeName;
  switch (name) {
    case 'null':
      return;
    case 'boolean':
      return advance(r, 1);
    case 'int':
    case 'long':
    case 'enum':
      readLong(r);
      return;
    case 'float':
      return advance(r, 4);
    case 'double':
      return advance(r, 8);
    case 'bytes':
    case 'string':
      return skipBytes(r);
    case 'fixed':
      return advance(r, type.size ?? 0);
    case 'record':
    case 'error':
      for (const field of type.fields ?? []) skip(field.type, r);
      return;
    case 'array':
      return skipBlocks(r, () => skip(type.itemsType ?? stop(), r));
    case 'map':
      return skipBlocks(r, () => {
        skipBytes(r);
        skip(type.valuesType ?? stop(), r);
      });
    case 'union':
      return skip(type.types?.[readLong(r)] ?? stop(), r);
    default:
      if (type.underlyingType !== undefined) return skip(type.underlyingType, r);
      stop();
  }
}

function skipBlocks(r: Reader, item: () => void): void {
  for (;;) {
    const signed = readLong(r);
    if (signed === 0) return;
    // Checked before anything else is read: the count may be the last bytes of the payload.
    const count = Math.abs(signed);
    r.items += count;
    if (r.items > r.buf.length + ZERO_SIZE_ITEMS) {
      throw new TooManyItems(`an array or map block claims ${count} items with ${Math.max(0, r.buf.length - r.pos)} bytes left in the payload`);
    }
    // A negative count is followed by the block's size in bytes.
    if (signed < 0) readLong(r);
    for (let index = 0; index < count; index++) item();
  }
}

function skipBytes(r: Reader): void {
  const length = readLong(r);
  if (length < 0) stop();
  advance(r, length);
}

function advance(r: Reader, bytes: number): void {
  r.pos += bytes;
  if (r.pos > r.buf.length) stop();
}

/** A zig-zag varint; past 2^53 only its magnitude is right, which is all a count needs. */
function readLong(r: Reader): number {
  let value = 0;
  let scale = 1;
  let byte: number;
  do {
    if (r.pos >= r.buf.length || scale > 2 ** 63) stop();
    byte = r.buf[r.pos++] ?? 0;
    value += (byte & 0x7f) * scale;
    scale *= 128;
  } while ((byte & 0x80) !== 0);
  return value % 2 === 0 ? value / 2 : -(value + 1) / 2;
}

function stop(): never {
  throw new Stop();
}
