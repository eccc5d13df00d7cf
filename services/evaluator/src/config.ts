import { ShadowConfigSchema, type Addresses, type ExperimentConfig, type ShadowConfig } from '@shadow-replay/contracts';
import { PlatformError, PlatformErrorCode, addressesFromEnv, loadYamlConfig } from '@shadow-replay/platform';

export interface EvaluatorSettings {
  evaluator: ShadowConfig['evaluator'];
  kafka: ShadowConfig['kafka'];
  redis: ShadowConfig['redis'];
  /** The experiment of this file, for its prices; other experiments are evaluated without. */
  experiment: ExperimentConfig | undefined;
  addresses: Addresses;
  /** The judge's API key, read from the variable `experiment.judge.apiKeyEnv` names. */
  judgeApiKey: string | undefined;
  logLevel: string;
}

/** The only place the evaluator reads the environment. */
export async function loadEvaluatorSettings(file: string, env: Record<string, string | undefined> = process.env): Promise<EvaluatorSettings> {
  return evaluatorSettings(await loadYamlConfig(file, ShadowConfigSchema), env);
}

export function evaluatorSettings(config: ShadowConfig, env: Record<string, string | undefined>): EvaluatorSettings {
  const keyEnv = config.experiment?.judge?.apiKeyEnv;
  if (keyEnv !== undefined && env[keyEnv] === undefined) {
    throw new PlatformError(PlatformErrorCode.configInvalid, `config: experiment.judge.apiKeyEnv names ${keyEnv}, which is not set in the environment`);
  }
  return {
    judgeApiKey: keyEnv === undefined ? undefined : env[keyEnv],
    evaluator: config.evaluator,
    kafka: config.kafka,
    redis: config.redis,
    experiment: config.experiment,
    addresses: addressesFromEnv(env),
    logLevel: env.LOG_LEVEL ?? 'info',
  };
}
