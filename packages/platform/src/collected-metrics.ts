import { Counter, Gauge, type Registry } from 'prom-client';

/**
 * A counter whose `collect` runs (and is awaited) at every scrape before its value is read: for
 * counts kept elsewhere, such as in a worker thread, that must be brought up to date first.
 */
export function collectedCounter<L extends string>(registry: Registry, name: string, help: string, labelNames: readonly L[], collect: () => Promise<void> | void): Counter<L> {
  return new Counter({ name, help, labelNames, registers: [registry], collect });
}

/** A gauge set at every scrape by `read`, which may wait (for a worker thread's report, say). */
export function collectedGauge(registry: Registry, name: string, help: string, read: () => Promise<number> | number): Gauge {
  return new Gauge({
    name,
    help,
    registers: [registry],
    async collect(this: Gauge) {
      this.set(await read());
    },
  });
}
