import { ShadowConfigSchema, type Addresses, type ExperimentConfig, type ShadowConfig } from '@shadow-replay/contracts';
import { addressesFromEnv, loadYamlConfig } from '@shadow-replay/platform';

export interface EvaluatorSettings {
  evaluator: ShadowConfig['evaluator'];
  kafka: ShadowConfig['kafka'];
  redis: ShadowConfig['redis'];
  /** The experiment of this file, for its prices; other experiments are evaluated without. */
  experiment: ExperimentConfig | undefined;
  addresses: Addresses;
  logLevel: string;
}

/** The only place the evaluator reads the environment. */
export async function loadEvaluatorSettings(file: string, env: Record<string, string | undefined> = process.env): Promise<EvaluatorSettings> {
  return evaluatorSettings(await loadYamlConfig(file, ShadowConfigSchema), env);
}

export function evaluatorSettings(config: ShadowConfig, env: Record<string, string | undefined>): EvaluatorSettings {
  return {
    evaluator: config.evaluator,
    kafka: config.kafka,
    redis: config.redis,
    experiment: config.experiment,
    addresses: addressesFromEnv(env),
    logLevel: env.LOG_LEVEL ?? 'info',
  };
}
