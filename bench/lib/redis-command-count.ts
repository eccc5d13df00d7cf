/**
 * Counts the Redis commands this process sends while a phase runs, by wrapping ioredis's
 * `sendCommand` (every client in the process funnels through it). Redis's own `INFO
 * commandstats` cannot tell one client from another, and the machines these benchmarks run on
 * share their Redis with other work.
 */
import { Redis } from 'ioredis';

export interface RedisCommandCounter {
  /** Stops counting and returns the commands seen, by name. */
  stop: () => Record<string, number>;
}

/**
 * Starts counting. A Lua script (`EVAL`) is named after the first command it calls other than
 * TIME, e.g. `eval ZREMRANGEBYSCORE`, so a semaphore poll and a state transition stay apart.
 */
export function countRedisCommands(): RedisCommandCounter {
  const prototype = Redis.prototype as unknown as { sendCommand: (this: Redis, command: { name: string; args: unknown[] }, ...rest: unknown[]) => unknown };
  const original = prototype.sendCommand;
  const counts: Record<string, number> = {};
  const labels = new Map<string, string>();
  prototype.sendCommand = function (this: Redis, command, ...rest) {
    const name = command.name === 'eval' ? evalLabel(command.args[0], labels) : command.name;
    counts[name] = (counts[name] ?? 0) + 1;
    return original.call(this, command, ...rest);
  };
  return {
    stop: () => {
      prototype.sendCommand = original;
      return counts;
    },
  };
}

function evalLabel(script: unknown, labels: Map<string, string>): string {
  const text = typeof script === 'string' ? script : Buffer.isBuffer(script) ? script.toString('utf8') : '';
  let label = labels.get(text);
  if (label === undefined) {
    const called = [...text.matchAll(/redis\.call\('([A-Za-z]+)'/g)].map((match) => (match[1] ?? '').toUpperCase()).find((name) => name !== 'TIME');
    label = `eval ${called ?? '?'}`;
    labels.set(text, label);
  }
  return label;
}
