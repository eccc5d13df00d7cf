/**
 * Stopping and starting the Kafka broker from a test, allowed only when the tests run on the
 * broker `npm run infra:up` started on this machine (scripts/infra.mjs): never someone else's.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const LOCAL_BROKER = '127.0.0.1:9092';

interface InfraModule {
  infraUp(options: { quiet?: boolean }): Promise<unknown>;
  infraDown(options: { quiet?: boolean }): Promise<unknown>;
  infraStatus(): Promise<{ kafka: { up: boolean; address: string } }>;
}

export interface LocalKafka {
  /** `infraDown()`: stops the broker (and the schema registry infra.mjs runs next to it). */
  stop(): Promise<void>;
  /** `infraUp()`: starts what is not running and waits until it answers. */
  start(): Promise<void>;
  isUp(): Promise<boolean>;
}

export type LocalKafkaCheck = { ok: true; kafka: LocalKafka } | { ok: false; reason: string };

async function loadInfra(): Promise<InfraModule> {
  return (await import(new URL('../../scripts/infra.mjs', import.meta.url).href)) as InfraModule;
}

/** True when `pid` runs the Kafka JVM that scripts/infra.mjs started for this checkout. */
function isOurKafka(pid: number): boolean {
  try {
    const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return args.includes('-Dshadow.infra.service=kafka') && args.includes(`-Dshadow.infra.root=${root.replace(/\/$/, '')}`);
  } catch {
    return false;
  }
}

/** Whether this test run may restart the broker, and the means to, or why not. */
export async function localKafka(): Promise<LocalKafkaCheck> {
  const brokers = process.env.KAFKA_BROKERS ?? '';
  if (brokers !== LOCAL_BROKER) return { ok: false, reason: `KAFKA_BROKERS is ${brokers || 'not set'}, not the local infrastructure's ${LOCAL_BROKER}: this case restarts the broker and only does so on the one npm run infra:up started` };
  const infra = await loadInfra();
  const status = await infra.infraStatus();
  if (!status.kafka.up || status.kafka.address !== LOCAL_BROKER) return { ok: false, reason: `infraStatus() reports kafka ${status.kafka.up ? 'up' : 'down'} at ${status.kafka.address}, not up at ${LOCAL_BROKER}` };
  let pid = NaN;
  try {
    pid = Number(readFileSync(join(root, '.infra', 'kafka', 'kafka.pid'), 'utf8').trim());
  } catch {
    // no pid file: not started by infra.mjs
  }
  if (!Number.isInteger(pid) || !isOurKafka(pid)) return { ok: false, reason: `the broker at ${LOCAL_BROKER} was not started by scripts/infra.mjs for this checkout (no live .infra/kafka/kafka.pid): it is not ours to restart` };
  return {
    ok: true,
    kafka: {
      stop: async () => {
        await infra.infraDown({ quiet: true });
      },
      start: async () => {
        await infra.infraUp({ quiet: true });
      },
      isUp: async () => (await infra.infraStatus()).kafka.up,
    },
  };
}
