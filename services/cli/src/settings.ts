import { ShadowConfigSchema, type Addresses, type ShadowConfig } from '@shadow-replay/contracts';
import { gatewaySettings } from '@shadow-replay/gateway';
import { evaluatorSettings } from '@shadow-replay/evaluator';
import { joinSettings } from '@shadow-replay/join';
import { addressesFromEnv, loadYamlConfig, validateConfig } from '@shadow-replay/platform';
import { replaySettings } from '@shadow-replay/replay';

/** The environment the CLI runs in; the only place the CLI reads it. */
export function cliEnv(): Record<string, string | undefined> {
  return process.env;
}

export function addresses(): Addresses {
  return addressesFromEnv(cliEnv());
}

export async function loadConfig(file: string): Promise<ShadowConfig> {
  return loadYamlConfig(file, ShadowConfigSchema);
}

export function parseConfig(raw: unknown, source: string): ShadowConfig {
  return validateConfig(raw, ShadowConfigSchema, source);
}

/** Every service's settings from one configuration, checked together (used by `all` and `validate`). */
export function allSettings(config: ShadowConfig, env = cliEnv()) {
  return {
    gateway: gatewaySettings(config, env),
    replay: replaySettings(config, env),
    join: joinSettings(config, env),
    evaluator: evaluatorSettings(config, env),
  };
}
