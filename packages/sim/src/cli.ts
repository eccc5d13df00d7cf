import { isSimError, SimError, SimErrorCode } from './errors.js';
import { applyProfilePatch, type SimProfile, type SimProfilePatch } from './profile.js';
import { profiles, resolveProfile, SimProfileName } from './profiles.js';
import { createSimServer } from './sim-server.js';

/** Parsed arguments of `shadow-replay sim`. */
export interface SimCliArgs {
  readonly help: boolean;
  /** @defaultValue "127.0.0.1" */
  readonly host: string;
  /** @defaultValue 8000 */
  readonly port: number;
  /** @defaultValue "stable" */
  readonly profileName: string;
  /** The `--set` values as a profile patch. */
  readonly overrides: SimProfilePatch;
  /** The named profile with the overrides applied and validated; `undefined` with `--help`. */
  readonly profile: SimProfile | undefined;
}

/** Where {@link runSimCli} writes, and what stops it besides SIGINT/SIGTERM. */
export interface SimCliIo {
  /** @defaultValue process.stdout */
  readonly stdout?: { write(text: string): unknown };
  /** @defaultValue process.stderr */
  readonly stderr?: { write(text: string): unknown };
  /** Aborting it stops the server like a signal does (for tests and embedding). */
  readonly signal?: AbortSignal;
}

export const SIM_CLI_DEFAULT_PORT = 8000;

export const simCliHelp = `Usage: shadow-replay sim [options]

Runs a simulated OpenAI-compatible model (POST /v1/chat/completions, GET /v1/models,
GET /healthz) until SIGINT or SIGTERM.

Options:
  --port N            port to listen on, 0 for any free one (default ${SIM_CLI_DEFAULT_PORT})
  --host H            address to listen on (default 127.0.0.1)
  --profile NAME      ${Object.keys(profiles).join(' | ')} (default stable)
  --set key=value     override a profile field; repeatable; nested keys with dots,
                      values parsed as JSON when they parse, else taken as strings
                      e.g. --set divergence=0.2 --set ttftMs.median=50 --set timeScale=0
  -h, --help          show this help

Per request, the header x-sim-fault: error|rate_limit|timeout|truncate|malformed|none
forces (or forbids) a fault.
`;

function usage(message: string): SimError {
  return new SimError(SimErrorCode.InvalidArgs, `${message} (see --help)`, { issues: [{ path: 'argv', message }] });
}

function parseValue(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

const keySegment = /^[A-Za-z][A-Za-z0-9]*$/u;

function addSetting(target: Record<string, unknown>, assignment: string): void {
  const equals = assignment.indexOf('=');
  if (equals <= 0) throw usage(`--set expects key=value, got "${assignment}"`);
  const segments = assignment.slice(0, equals).split('.');
  // Plain identifiers only: no "__proto__" games with nested keys.
  if (!segments.every((segment) => keySegment.test(segment))) {
    throw usage(`--set key "${assignment.slice(0, equals)}" is not a dotted field name`);
  }
  let node = target;
  for (const segment of segments.slice(0, -1)) {
    const child = node[segment];
    if (typeof child !== 'object' || child === null || Array.isArray(child)) node[segment] = {};
    node = node[segment] as Record<string, unknown>;
  }
  node[segments[segments.length - 1] ?? ''] = parseValue(assignment.slice(equals + 1));
}

function parsePort(text: string): number {
  const port = Number(text);
  if (!/^\d+$/u.test(text) || port > 65535) throw usage(`--port expects 0-65535, got "${text}"`);
  return port;
}

/**
 * Parses `shadow-replay sim` arguments (without the command name itself):
 * `[--port N] [--host H] [--profile NAME] [--set key=value ...] [--help]`, also `--flag=value`.
 * @throws SimError `SIM_INVALID_ARGS`, `SIM_UNKNOWN_PROFILE` or `SIM_INVALID_PROFILE` (naming the field).
 */
export function parseSimArgs(argv: readonly string[]): SimCliArgs {
  let help = false;
  let host = '127.0.0.1';
  let port = SIM_CLI_DEFAULT_PORT;
  let profileName: string = SimProfileName.Stable;
  const overrides: Record<string, unknown> = {};

  for (let index = 0; index < argv.length; index += 1) {
    const arg = argv[index] ?? '';
    if (arg === '-h' || arg === '--help') {
      help = true;
      continue;
    }
    const inline = /^(--[a-z-]+)=(.*)$/su.exec(arg);
    const flag = inline?.[1] ?? arg;
    const takeValue = (): string => {
      if (inline !== null) return inline[2] ?? '';
      const value = argv[index + 1];
      if (value === undefined) throw usage(`${flag} needs a value`);
      index += 1;
      return value;
    };
    switch (flag) {
      case '--port':
        port = parsePort(takeValue());
        break;
      case '--host':
        host = takeValue();
        break;
      case '--profile':
        profileName = takeValue();
        break;
      case '--set':
        addSetting(overrides, takeValue());
        break;
      default:
        throw usage(arg.startsWith('-') ? `unknown option ${arg}` : `unexpected argument "${arg}"`);
    }
  }

  const profile = help ? undefined : applyProfilePatch(resolveProfile(profileName), overrides);
  return { help, host, port, profileName, overrides: overrides, profile };
}

const stopSignals = ['SIGINT', 'SIGTERM'] as const;

/**
 * Runs `shadow-replay sim`: prints help, or starts the server, logs
 * `sim listening on URL (profile NAME)` and serves until SIGINT/SIGTERM (or `io.signal`),
 * then closes it. Signal handlers exist only while it runs. Resolves with the exit code:
 * 0 done, 2 bad arguments or profile, 1 could not listen.
 */
export async function runSimCli(argv: readonly string[], io: SimCliIo = {}): Promise<number> {
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  let args: SimCliArgs;
  try {
    args = parseSimArgs(argv);
  } catch (error) {
    stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    return 2;
  }
  if (args.help || args.profile === undefined) {
    stdout.write(simCliHelp);
    return 0;
  }

  const server = createSimServer({ profile: args.profile, host: args.host, port: args.port });
  let stop: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => {
    stop = resolve;
  });
  for (const name of stopSignals) process.once(name, stop);
  io.signal?.addEventListener('abort', stop, { once: true });
  if (io.signal?.aborted === true) stop();
  try {
    const { url } = await server.start();
    stdout.write(`sim listening on ${url} (profile ${args.profile.name})\n`);
    await stopped;
    return 0;
  } catch (error) {
    stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    return isSimError(error, SimErrorCode.ListenFailed) ? 1 : 2;
  } finally {
    for (const name of stopSignals) process.off(name, stop);
    io.signal?.removeEventListener('abort', stop);
    await server.close();
  }
}
