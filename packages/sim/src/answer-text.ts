import type { SimOutputTokens, SimProfile } from './profile.js';
import { hashToUnit, intBetween, normal, pick, seededRandom, type RandomSource } from './random.js';
import { vocabulary } from './vocabulary.js';

/** Which seed answers a prompt, and whether that is the diverging one. */
export interface SimAnswerSeed {
  readonly seed: string;
  /** True when the prompt is among the `divergence` fraction answered with the profile's own seed. */
  readonly diverged: boolean;
}

/**
 * Picks the seed of the answer to `prompt`. A prompt diverges when
 * hash(divergenceSalt, prompt) < divergence — independent of the seeds, so every run
 * (and every profile with the same salt) diverges on the same prompts. Diverging
 * prompts use `seed`; the rest use `baseSeed` (default `seed`).
 */
export function answerSeed(prompt: string, profile: SimProfile): SimAnswerSeed {
  const diverged = profile.divergence > 0 && hashToUnit(profile.divergenceSalt, prompt) < profile.divergence;
  if (diverged || profile.baseSeed === undefined) return { seed: profile.seed, diverged };
  return { seed: profile.baseSeed, diverged: false };
}

function drawLength(random: RandomSource, outputTokens: SimOutputTokens): number {
  if ('min' in outputTokens) return intBetween(random, outputTokens.min, outputTokens.max);
  return Math.max(1, Math.round(outputTokens.mean + outputTokens.sd * normal(random)));
}

function capitalize(word: string): string {
  return word.charAt(0).toUpperCase() + word.slice(1);
}

/**
 * The full (uncapped) answer words for a prompt under a seed: a deterministic function
 * of (prompt, seed, outputTokens). Words come from the fixed vocabulary in sentences of
 * 5–12 words, so the whitespace token count equals the drawn length exactly.
 */
export function answerWords(prompt: string, seed: string, outputTokens: SimOutputTokens): string[] {
  const random = seededRandom('answer', seed, prompt);
  const length = drawLength(random, outputTokens);
  const words: string[] = [];
  while (words.length < length) {
    const sentence = Math.min(intBetween(random, 5, 12), length - words.length);
    for (let i = 0; i < sentence; i += 1) {
      let word = pick(random, vocabulary);
      if (i === 0) word = capitalize(word);
      if (i === sentence - 1) word = `${word}.`;
      words.push(word);
    }
  }
  return words;
}

/**
 * Replaces one word at random (not deterministic: `Math.random` by default), keeping its
 * capitalisation and trailing period, to model sampling noise at `temperature > 0`.
 */
export function perturbOneWord(words: readonly string[], random: RandomSource = Math.random): string[] {
  const result = [...words];
  if (result.length === 0) return result;
  const index = Math.floor(random() * result.length);
  const original = result[index] ?? '';
  const bare = original.replace(/\.$/u, '').toLowerCase();
  let replacement = pick(random, vocabulary);
  // Re-draw a few times so the answer really changes; the vocabulary has 160 words.
  for (let attempt = 0; replacement === bare && attempt < 8; attempt += 1) replacement = pick(random, vocabulary);
  if (replacement === bare) replacement = bare === 'the' ? 'a' : 'the';
  if (/^[A-Z]/u.test(original)) replacement = capitalize(replacement);
  if (original.endsWith('.')) replacement = `${replacement}.`;
  result[index] = replacement;
  return result;
}
