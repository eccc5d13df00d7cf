import { createLogger, runUntilSignal } from '@shadow-replay/platform';
import { loadJoinSettings } from './config.js';
import { JoinService } from './join-service.js';

/** `shadow-replay join --config FILE`: pairs responses until SIGTERM. */
export async function main(configFile: string): Promise<void> {
  const settings = await loadJoinSettings(configFile);
  const log = createLogger('join', { level: settings.logLevel });
  await runUntilSignal(new JoinService({ settings, log }), log);
}
