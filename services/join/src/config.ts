import { ShadowConfigSchema, type Addresses, type ShadowConfig } from '@shadow-replay/contracts';
import { addressesFromEnv, loadYamlConfig } from '@shadow-replay/platform';

export interface JoinSettings {
  join: ShadowConfig['join'];
  kafka: ShadowConfig['kafka'];
  redis: ShadowConfig['redis'];
  /** How long one side waits for the other. @defaultValue 15 minutes */
  windowMs: number;
  /** `evaluator.attempts`, stamped on each pair's job: the runs BullMQ allows its evaluation. */
  evaluationAttempts: number;
  addresses: Addresses;
  logLevel: string;
}

/** The only place the join service reads the environment. */
export async function loadJoinSettings(file: string, env: Record<string, string | undefined> = process.env): Promise<JoinSettings> {
  return joinSettings(await loadYamlConfig(file, ShadowConfigSchema), env);
}

export function joinSettings(config: ShadowConfig, env: Record<string, string | undefined>): JoinSettings {
  return {
    join: config.join,
    kafka: config.kafka,
    redis: config.redis,
    windowMs: config.experiment?.join.windowMs ?? 15 * 60_000,
    evaluationAttempts: config.evaluator.attempts,
    addresses: addressesFromEnv(env),
    logLevel: env.LOG_LEVEL ?? 'info',
  };
}
