import { ShadowConfigSchema, type Addresses, type ExperimentConfig, type ShadowConfig } from '@shadow-replay/contracts';
import { PlatformError, PlatformErrorCode, addressesFromEnv, loadYamlConfig } from '@shadow-replay/platform';

export interface ReplaySettings {
  experiment: ExperimentConfig;
  replay: ShadowConfig['replay'];
  kafka: ShadowConfig['kafka'];
  redis: ShadowConfig['redis'];
  addresses: Addresses;
  /** API keys by candidate name, read from the variables the config names. */
  apiKeys: Record<string, string>;
  logLevel: string;
}

/** The only place the replay service reads the environment. */
export async function loadReplaySettings(file: string, env: Record<string, string | undefined> = process.env): Promise<ReplaySettings> {
  return replaySettings(await loadYamlConfig(file, ShadowConfigSchema), env);
}

export function replaySettings(config: ShadowConfig, env: Record<string, string | undefined>): ReplaySettings {
  const experiment = config.experiment;
  if (experiment === undefined) throw new PlatformError(PlatformErrorCode.configInvalid, 'config: experiment: required to run replay (id, candidates)');
  const apiKeys: Record<string, string> = {};
  experiment.candidates.forEach((candidate, index) => {
    if (candidate.apiKeyEnv === undefined) return;
    const key = env[candidate.apiKeyEnv];
    if (key === undefined) {
      throw new PlatformError(PlatformErrorCode.configInvalid, `config: experiment.candidates[${index}].apiKeyEnv names ${candidate.apiKeyEnv}, which is not set in the environment`);
    }
    apiKeys[candidate.name] = key;
  });
  return { experiment, replay: config.replay, kafka: config.kafka, redis: config.redis, addresses: addressesFromEnv(env), apiKeys, logLevel: env.LOG_LEVEL ?? 'info' };
}
