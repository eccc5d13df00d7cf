/**
 * The start every benchmark shares: its options (or `--help`), the service addresses from the
 * environment, and Ctrl-C: the first stops the run at the next safe point so it can clean up,
 * the second exits at once.
 */
import { addressesFromEnv } from '@shadow-replay/platform';

/** Progress goes to stderr, the tables to stdout. */
export const log = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

/** A bad flag; its message names the flag and what was expected. */
export class UsageError extends Error {}

export function numberFlag(flag: string, raw: string, min: number): number {
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min) throw new UsageError(`${flag} must be a number ≥ ${min} (got ${raw})`);
  return value;
}

export function integerFlag(flag: string, raw: string, min = 1): number {
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) throw new UsageError(`${flag} must be an integer ≥ ${min} (got ${raw})`);
  return value;
}

/** `--parts a,b`: the named parts, each one of `known`, at least one. */
export function partsFlag<P extends string>(raw: string, known: readonly P[]): Set<P> {
  const parts = new Set<P>();
  for (const name of raw.split(',').map((part) => part.trim()).filter((part) => part !== '')) {
    if (!known.includes(name as P)) throw new UsageError(`--parts: unknown part "${name}" (known: ${known.join(', ')})`);
    parts.add(name as P);
  }
  if (parts.size === 0) throw new UsageError('--parts must name at least one part');
  return parts;
}

export interface BenchStart<O> {
  options: O;
  addresses: ReturnType<typeof addressesFromEnv>;
  /** Aborted by the first Ctrl-C. */
  signal: AbortSignal;
}

export interface BenchCli<O> {
  usage: string;
  /** Throws with a message naming the flag for bad input; `'help'` for `--help`. */
  parse: (argv: string[]) => O | 'help';
  /** What the first Ctrl-C lets the run finish, e.g. "the current block". */
  finishes: string;
  log: (line: string) => void;
}

/** The benchmark's start, or the exit code when there is nothing to run (2: bad flags, 0: help). */
export function startBench<O>(argv: string[], cli: BenchCli<O>): BenchStart<O> | number {
  let options: O | 'help';
  try {
    options = cli.parse(argv);
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n\n${cli.usage}`);
    return 2;
  }
  if (options === 'help') {
    process.stdout.write(cli.usage);
    return 0;
  }
  const abort = new AbortController();
  process.on('SIGINT', () => {
    if (abort.signal.aborted) process.exit(130);
    cli.log(`interrupted: finishing ${cli.finishes}, then cleaning up (Ctrl-C again to exit at once)`);
    abort.abort();
  });
  return { options, addresses: addressesFromEnv(process.env), signal: abort.signal };
}
