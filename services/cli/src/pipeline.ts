import type { ShadowConfig } from '@shadow-replay/contracts';
import { EvaluatorService } from '@shadow-replay/evaluator';
import { GatewayService } from '@shadow-replay/gateway';
import { JoinService } from '@shadow-replay/join';
import { once, runSteps, waitFor, type Logger, type Service } from '@shadow-replay/platform';
import { ReplayService } from '@shadow-replay/replay';
import { allSettings } from './settings.js';

/** All four services in one process (`shadow-replay all`, the demo and the end-to-end tests). */
export class Pipeline implements Service {
  readonly gateway: GatewayService;
  readonly replay: ReplayService;
  readonly join: JoinService;
  readonly evaluator: EvaluatorService;
  readonly #log: Logger;
  readonly close: () => Promise<void>;

  constructor(config: ShadowConfig, log: Logger, env?: Record<string, string | undefined>) {
    const settings = allSettings(config, env);
    this.#log = log;
    this.join = new JoinService({ settings: settings.join, log: log.child({ service: 'join' }) });
    this.evaluator = new EvaluatorService({ settings: settings.evaluator, log: log.child({ service: 'evaluator' }) });
    this.replay = new ReplayService({ settings: settings.replay, log: log.child({ service: 'replay' }) });
    this.gateway = new GatewayService({ settings: settings.gateway, log: log.child({ service: 'gateway' }) });
    // Upstream first: the gateway stops taking traffic before the stages behind it drain.
    this.close = once(() =>
      runSteps(this.#log, [
        ['gateway', () => this.gateway.close()],
        ['replay', () => this.replay.close()],
        ['join', () => this.join.close()],
        ['evaluator', () => this.evaluator.close()],
      ]),
    );
  }

  async start(): Promise<void> {
    // One after the other: each creates the topics it needs, and creating them at once races.
    await this.join.start();
    await this.evaluator.start();
    await this.replay.start();
    await waitFor(() => this.replay.ready && this.join.ready, { timeoutMs: 60_000, what: 'replay and join consumers to join their groups' });
    await this.gateway.start();
  }
}
