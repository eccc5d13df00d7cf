import { ShadowConfigSchema, type Addresses, type GatewayConfig, type ShadowConfig } from '@shadow-replay/contracts';
import { PlatformError, PlatformErrorCode, addressesFromEnv, loadYamlConfig } from '@shadow-replay/platform';

export interface GatewaySettings {
  gateway: GatewayConfig;
  kafka: ShadowConfig['kafka'];
  addresses: Addresses;
  /** API key for the stable endpoint, when `stable.apiKeyEnv` names one; else the caller's own header goes through. */
  stableApiKey: string | undefined;
  logLevel: string;
}

/** The only place the gateway reads the environment. */
export async function loadGatewaySettings(file: string, env: Record<string, string | undefined> = process.env): Promise<GatewaySettings> {
  return gatewaySettings(await loadYamlConfig(file, ShadowConfigSchema), env);
}

export function gatewaySettings(config: ShadowConfig, env: Record<string, string | undefined>): GatewaySettings {
  if (config.gateway === undefined) throw new PlatformError(PlatformErrorCode.configInvalid, 'config: gateway: required to run the gateway (listen, stable.baseUrl)');
  const keyEnv = config.gateway.stable.apiKeyEnv;
  if (keyEnv !== undefined && env[keyEnv] === undefined) {
    throw new PlatformError(PlatformErrorCode.configInvalid, `config: gateway.stable.apiKeyEnv names ${keyEnv}, which is not set in the environment`);
  }
  return { gateway: config.gateway, kafka: config.kafka, addresses: addressesFromEnv(env), stableApiKey: keyEnv === undefined ? undefined : env[keyEnv], logLevel: env.LOG_LEVEL ?? 'info' };
}
