/**
 * kcat (librdkafka's command-line client) reading a topic from the beginning to its end: the
 * reference for how fast this machine's Kafka hands out a topic to a client that does nothing
 * with the records.
 */
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';

export const KCAT_INSTALL_HINT =
  'The ceiling ratio needs kcat: install it (Debian/Ubuntu: `apt-get install -y kcat`; macOS: `brew install kcat`) or pass --kcat PATH. Everything else is measured without it.';

export interface KcatRun {
  /** Process start → exit: connecting, metadata and reading every partition to its end. */
  wallMs: number;
  /** Process start → first record on stdout; null when nothing came. */
  firstRecordMs: number | null;
  /** Records read (one line each: the values are single-line JSON). */
  records: number;
  exitCode: number | null;
  /** What kcat said on stderr, trimmed (empty on a clean run with -q). */
  stderr: string;
}

export type KcatOutcome = { found: true; run: KcatRun } | { found: false; reason: string };

/**
 * Runs `kcat -C -b <brokers> -t <topic> -o beginning -e -q [extraArgs]` and counts the lines it prints.
 * Resolves `{ found: false }` when the executable is missing; rejects on a timeout.
 */
export function readTopicWithKcat(options: { kcat: string; brokers: readonly string[]; topic: string; timeoutMs: number; extraArgs?: readonly string[] }): Promise<KcatOutcome> {
  const args = ['-C', '-b', options.brokers.join(','), '-t', options.topic, '-o', 'beginning', '-e', '-q', ...(options.extraArgs ?? [])];
  return new Promise((resolve, reject) => {
    const startedAt = performance.now();
    const child = spawn(options.kcat, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let records = 0;
    let firstRecordMs: number | null = null;
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`kcat did not reach the end of ${options.topic} within ${options.timeoutMs} ms`));
    }, options.timeoutMs);
    child.stdout.on('data', (chunk: Buffer) => {
      firstRecordMs ??= performance.now() - startedAt;
      // Counting newlines byte by byte: no decoding, so this reader stays far faster than kcat.
      for (let at = chunk.indexOf(10); at !== -1; at = chunk.indexOf(10, at + 1)) records++;
    });
    child.stderr.on('data', (chunk: Buffer) => {
      if (stderr.length < 4096) stderr += chunk.toString('utf8');
    });
    child.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (error.code === 'ENOENT') resolve({ found: false, reason: `${options.kcat}: not found` });
      else reject(error);
    });
    child.on('close', (exitCode) => {
      clearTimeout(timer);
      resolve({ found: true, run: { wallMs: performance.now() - startedAt, firstRecordMs, records, exitCode, stderr: stderr.trim() } });
    });
  });
}

/** kcat's version line (with librdkafka's), or null when the executable is missing or does not run. */
export function kcatVersion(kcat: string): Promise<string | null> {
  return new Promise((resolve) => {
    const child = spawn(kcat, ['-V'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
    });
    child.on('error', () => resolve(null));
    child.on('close', (code) => {
      const lines = out.split('\n').map((line) => line.trim());
      resolve(code === 0 ? (lines.find((line) => line.startsWith('Version')) ?? lines[0] ?? '') : null);
    });
  });
}
