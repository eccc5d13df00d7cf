import { pino } from 'pino';

/** The logging surface shared packages depend on; services hand in a pino logger. */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  child(bindings: Record<string, unknown>): Logger;
}

export interface LoggerOptions {
  /** @defaultValue `process.env.LOG_LEVEL` or `info` */
  level?: string;
}

export function createLogger(service: string, options: LoggerOptions = {}): Logger {
  return pino({
    name: service,
    level: options.level ?? 'info',
    base: { service },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}

/** A logger that drops everything, for tests that do not care. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
