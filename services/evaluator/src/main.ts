import { createLogger, runUntilSignal } from '@shadow-replay/platform';
import { loadEvaluatorSettings } from './config.js';
import { EvaluatorService } from './evaluator-service.js';

/** `shadow-replay evaluator --config FILE`: evaluates pairs until SIGTERM. */
export async function main(configFile: string): Promise<void> {
  const settings = await loadEvaluatorSettings(configFile);
  const log = createLogger('evaluator', { level: settings.logLevel });
  await runUntilSignal(new EvaluatorService({ settings, log }), log);
}
