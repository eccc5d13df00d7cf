/**
 * Entry of the gateway's publisher thread (node:worker_threads): receives the exchanges the live
 * path relayed and runs the shadow path's work (assembly, events, redaction, serialization,
 * kafkajs) on its own event loop, so none of it delays a user's bytes.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { Logger } from '@shadow-replay/platform';
import type { FromPublisher, LogLevel, ToPublisher } from './capture.js';
import type { GatewaySettings } from './config.js';
import { ShadowPublisher } from './shadow-publisher.js';

const port = parentPort;
if (port === null) throw new Error('publisher-worker runs as a worker thread only');

function post(message: FromPublisher): void {
  port?.postMessage(message);
}

/** Log records go to the live path's logger, so the gateway logs through one sink. */
function forwardingLogger(bindings: Record<string, unknown> = {}): Logger {
  const write = (level: LogLevel) => (obj: object, msg?: string) => post({ type: 'log', level, obj: { ...bindings, ...plain(obj) }, msg });
  return { debug: write('debug'), info: write('info'), warn: write('warn'), error: write('error'), child: (more) => forwardingLogger({ ...bindings, ...more }) };
}

/** Errors do not survive structured cloning with their message and stack as fields; these do. */
function plain(obj: object): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(obj)) {
    out[key] = value instanceof Error ? { type: value.name, message: value.message, stack: value.stack, ...('code' in value ? { code: (value as { code: unknown }).code } : {}) } : value;
  }
  return out;
}

const { settings } = workerData as { settings: GatewaySettings };
const REPORT_INTERVAL_MS = 100;
let reportScheduled = false;
let reportTimer: NodeJS.Timeout | undefined;
const publisher = new ShadowPublisher({
  settings,
  log: forwardingLogger(),
  onChange: () => {
    // At most one report per interval: each one is work for the live path's thread. A scrape
    // (sync) and close report at once.
    if (reportScheduled) return;
    reportScheduled = true;
    reportTimer = setTimeout(report, REPORT_INTERVAL_MS);
  },
});

function report(): void {
  clearTimeout(reportTimer);
  reportScheduled = false;
  post({ type: 'counts', counts: publisher.takeCounts() });
}

port.on('message', (message: ToPublisher) => {
  switch (message.type) {
    case 'capture':
      for (const exchange of message.items) publisher.handle(exchange);
      return;
    case 'sync':
      report();
      post({ type: 'synced', id: message.id });
      return;
    case 'stall':
      Atomics.wait(new Int32Array(message.flag), 0, 0);
      return;
    case 'close':
      void publisher
        .close(message.deadlineMs)
        .catch((error: unknown) => post({ type: 'log', level: 'error', obj: plain({ err: error }), msg: 'publisher close failed' }))
        .finally(() => {
          report();
          post({ type: 'closed' });
        });
      return;
  }
});

publisher.start();
post({ type: 'ready' });
