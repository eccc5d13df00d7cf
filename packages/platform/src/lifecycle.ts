import type { Logger } from './logger.js';

/** A long-running part of a service. */
export interface Service {
  start(): Promise<void>;
  /** Drains and stops. Idempotent: every caller gets the same promise. */
  close(): Promise<void>;
}

/**
 * Runs cleanup steps in order and keeps going when one fails, so one broken client never
 * leaves the others open. The first error is rethrown after every step ran.
 */
export async function runSteps(log: Logger, steps: ReadonlyArray<readonly [string, () => unknown]>): Promise<void> {
  let first: unknown;
  for (const [name, step] of steps) {
    const started = Date.now();
    try {
      await step();
      log.debug({ step: name, ms: Date.now() - started }, 'closed');
    } catch (error) {
      log.warn({ step: name, err: error }, 'close step failed');
      first ??= error;
    }
  }
  if (first !== undefined) throw first instanceof Error ? first : new Error('close step failed', { cause: first });
}

/** Memoises a close function so every caller shares one run. */
export function once(fn: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  return () => (running ??= fn());
}

/** Resolves when `predicate` returns true, polling until the deadline. */
export async function waitFor(predicate: () => boolean | Promise<boolean>, options: { timeoutMs: number; intervalMs?: number; what: string }): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${options.timeoutMs} ms waiting for ${options.what}`);
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 50));
  }
}

/**
 * Starts a service and stops it on SIGTERM or SIGINT: stop taking work, drain within the
 * deadline, exit 0. A second signal, or a drain past the deadline, exits 1 at once.
 * Only a service's `main.ts` calls this.
 */
export async function runUntilSignal(service: Service, log: Logger, drainDeadlineMs = 30_000): Promise<void> {
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      log.warn({ signal }, 'second signal, exiting now');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal, drainDeadlineMs }, 'stopping');
    const timer = setTimeout(() => {
      log.error({ drainDeadlineMs }, 'drain deadline passed, exiting');
      process.exit(1);
    }, drainDeadlineMs);
    timer.unref();
    service.close().then(
      () => {
        log.info({}, 'stopped');
        process.exit(0);
      },
      (error: unknown) => {
        log.error({ err: error }, 'close failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  await service.start();
}
