import { createLogger, runUntilSignal } from '@shadow-replay/platform';
import { loadReplaySettings } from './config.js';
import { ReplayService } from './replay-service.js';

/** `shadow-replay replay --config FILE`: replays live traffic until SIGTERM. */
export async function main(configFile: string): Promise<void> {
  const settings = await loadReplaySettings(configFile);
  const log = createLogger('replay', { level: settings.logLevel });
  await runUntilSignal(new ReplayService({ settings, log }), log);
}
