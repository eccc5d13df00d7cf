import { createLogger, runUntilSignal } from '@shadow-replay/platform';
import { loadGatewaySettings } from './config.js';
import { GatewayService } from './gateway-service.js';

/** `shadow-replay gateway --config FILE`: runs the gateway until SIGTERM. */
export async function main(configFile: string): Promise<void> {
  const settings = await loadGatewaySettings(configFile);
  const log = createLogger('gateway', { level: settings.logLevel });
  await runUntilSignal(new GatewayService({ settings, log }), log);
}
