/**
 * RFC 6901 JSON pointers, compiled once from configuration and resolved per record.
 * `""` is the whole document, `/a/b` walks keys, `~1` is a literal `/` and `~0` a literal `~`;
 * array items are addressed by decimal index without leading zeros.
 */

/** The syntax of RFC 6901 §3. */
export const JSON_POINTER_PATTERN = /^(\/([^~/]|~[01])*)*$/;

export interface JsonPointer {
  /** The pointer as written in the configuration, for reasons and logs. */
  readonly source: string;
  readonly tokens: readonly string[];
}

export function isJsonPointer(text: string): boolean {
  return JSON_POINTER_PATTERN.test(text);
}

/** Compiles a pointer; throws on bad syntax (configuration is validated before this runs). */
export function compilePointer(source: string): JsonPointer {
  if (!isJsonPointer(source)) throw new TypeError(`not an RFC 6901 JSON pointer: ${JSON.stringify(source)}`);
  const tokens = source === '' ? [] : source.slice(1).split('/').map((token) => token.replaceAll('~1', '/').replaceAll('~0', '~'));
  return { source, tokens };
}

const ARRAY_INDEX = /^(0|[1-9][0-9]*)$/;

/**
 * The value the pointer names, or `undefined` when any step is missing. Only own properties
 * are followed, so `/constructor` or `/__proto__` never reach into prototypes.
 */
export function resolvePointer(document: unknown, pointer: JsonPointer): unknown {
  let current: unknown = document;
  for (const token of pointer.tokens) {
    if (Array.isArray(current)) {
      if (!ARRAY_INDEX.test(token)) return undefined;
      current = (current as unknown[])[Number(token)];
    } else if (isRecord(current)) {
      if (!Object.hasOwn(current, token)) return undefined;
      current = current[token];
    } else {
      return undefined;
    }
    if (current === undefined) return undefined;
  }
  return current;
}

/** A plain JSON object (not an array, not a Buffer). */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}
