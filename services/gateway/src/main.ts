import { createLogger, runUntilSignal } from '@shadow-replay/platform';
import { loadGatewaySettings } from './config.js';
import { GatewayService } from './gateway-service.js';

/**
 * `shadow-replay gateway --config FILE`: runs the gateway until SIGTERM. SIGHUP re-reads the
 * file and applies the new sampling rate without a restart (other changes need one).
 */
export async function main(configFile: string): Promise<void> {
  const settings = await loadGatewaySettings(configFile);
  const log = createLogger('gateway', { level: settings.logLevel });
  const gateway = new GatewayService({ settings, log });
  process.on('SIGHUP', () => {
    loadGatewaySettings(configFile).then(
      (next) => gateway.setSamplingRate(next.gateway.sampling.rate),
      (error: unknown) => log.error({ err: error }, 'config reload failed; keeping the running settings'),
    );
  });
  await runUntilSignal(gateway, log);
}
