import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** A registry per service instance (tests run several services in one process). */
export function createRegistry(service: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
  return registry;
}

export function counter<L extends string>(registry: Registry, name: string, help: string, labelNames: readonly L[] = []): Counter<L> {
  return new Counter({ name, help, labelNames, registers: [registry] });
}

/** A gauge; `read`, when given, is called at every scrape to set its value. */
export function gauge<L extends string>(registry: Registry, name: string, help: string, labelNames: readonly L[] = [], read?: () => number): Gauge<L> {
  return new Gauge({
    name,
    help,
    labelNames,
    registers: [registry],
    ...(read ? { collect(this: Gauge<L>) { this.set(read()); } } : {}),
  });
}

export function histogram<L extends string>(registry: Registry, name: string, help: string, labelNames: readonly L[] = [], buckets?: number[]): Histogram<L> {
  return new Histogram({ name, help, labelNames, registers: [registry], ...(buckets ? { buckets } : {}) });
}
