import { createHash } from 'node:crypto';

/** A source of uniform numbers in [0, 1), like `Math.random`. */
export type RandomSource = () => number;

// A NUL separator keeps ("ab","c") and ("a","bc") apart.
function digest(parts: readonly string[]): Buffer {
  return createHash('sha256').update(parts.join('\0')).digest();
}

/**
 * Stable 32-bit hash of the parts. sha256 rather than FNV so that near-identical
 * prompts ("prompt 1", "prompt 2") still spread evenly, which the divergence
 * fraction relies on.
 */
export function hashToUint32(...parts: string[]): number {
  return digest(parts).readUInt32BE(0);
}

/** Stable hash of the parts mapped to [0, 1). */
export function hashToUnit(...parts: string[]): number {
  return hashToUint32(...parts) / 2 ** 32;
}

/** mulberry32: tiny, fast, good enough for picking words; not for anything secret. */
export function mulberry32(seed: number): RandomSource {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** A deterministic stream seeded by hashing the parts. */
export function seededRandom(...parts: string[]): RandomSource {
  return mulberry32(hashToUint32(...parts));
}

/** Standard normal deviate (Box–Muller). */
export function normal(random: RandomSource): number {
  // 1 - u keeps the log argument in (0, 1].
  const u = 1 - random();
  const v = random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/** Integer in [min, max], both inclusive. */
export function intBetween(random: RandomSource, min: number, max: number): number {
  return min + Math.floor(random() * (max - min + 1));
}

/** Uniform pick from a non-empty list. */
export function pick<T>(random: RandomSource, items: readonly T[]): T {
  const item = items[Math.floor(random() * items.length)];
  if (item === undefined) throw new RangeError('pick() needs a non-empty list');
  return item;
}
