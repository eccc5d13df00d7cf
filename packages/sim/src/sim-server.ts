import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { respondToChat } from './chat-handler.js';
import { parseChatRequest, type SimChatRequest } from './chat-request.js';
import { SimError, SimErrorCode } from './errors.js';
import { drawFault, parseFaultHeader, SIM_FAULT_HEADER, SIM_FAULT_NONE, SimFault, simFaults } from './faults.js';
import { BodyTooLargeError, readBody, sendError, sendJson } from './http-util.js';
import { OpenAiErrorType } from './openai-format.js';
import { applyProfilePatch, parseProfile, type SimProfile, type SimProfileInput, type SimProfilePatch } from './profile.js';
import { resolveProfile, SimProfileName } from './profiles.js';
import { seededRandom, type RandomSource } from './random.js';
import { SimStatsCollector, type SimStats } from './stats.js';

/** Minimal logger; a pino logger fits. */
export interface SimLogger {
  error(object: object, message: string): void;
}

/** Options of {@link createSimServer}. */
export interface SimServerOptions {
  /**
   * A built-in profile name, or a profile object (validated; missing fields take the
   * schema defaults, not a named profile's).
   * @defaultValue "stable"
   */
  readonly profile?: string | SimProfileInput | undefined;
  /** Patch applied on top of `profile`, e.g. `{ timeScale: 0 }` in tests. @defaultValue none */
  readonly overrides?: SimProfilePatch | undefined;
  /** @defaultValue "127.0.0.1" */
  readonly host?: string | undefined;
  /** 0 picks a free port. @defaultValue 0 */
  readonly port?: number | undefined;
  /** Seconds of per-second arrival counts kept by `stats()`. @defaultValue 60 */
  readonly statsWindowSeconds?: number | undefined;
  /** Largest accepted request body. @defaultValue 16 MiB */
  readonly maxBodyBytes?: number | undefined;
  /** Receives unexpected handler errors (answered with 500). @defaultValue none */
  readonly logger?: SimLogger | undefined;
  /** Sees each valid chat request as it is answered: who called, when, and the fault drawn. @defaultValue none */
  readonly onChat?: ((arrival: SimArrival) => void) | undefined;
}

/** One chat request as the sim took it, for tests and benchmarks that need per-request times. */
export interface SimArrival {
  /** `Date.now()` when the request was read. */
  readonly receivedAt: number;
  readonly headers: IncomingMessage['headers'];
  /** The request body as the sim parsed it (unknown fields kept), so a test can check what a caller sent. */
  readonly request: SimChatRequest;
  /** The fault the request gets, or null for a normal answer. */
  readonly fault: SimFault | null;
}

/** A running (or runnable) simulated OpenAI-compatible model. */
export interface SimServer {
  /**
   * Listens; resolves with the base URL (`http://host:port`, no trailing slash). Calling it
   * again returns the same promise.
   * @throws SimError `SIM_LISTEN_FAILED`, or `SIM_CLOSED` after `close()`.
   */
  start(): Promise<{ readonly url: string }>;
  /**
   * Stops listening and destroys every connection, idle keep-alive ones and in-flight
   * streams or held (timeout) requests alike. Every call returns the same promise.
   */
  close(): Promise<void>;
  /** Counters of the chat completion route, see {@link SimStats}. */
  stats(): SimStats;
  /** Zeroes the counters (not the in-flight level), e.g. between benchmark phases. */
  resetStats(): void;
  /** Current profile. */
  profile(): SimProfile;
  /**
   * Changes behaviour for requests arriving from now on (in-flight ones keep the profile
   * they arrived with). Returns the new profile.
   * @throws SimError `SIM_INVALID_PROFILE`; the old profile stays in force.
   */
  setProfile(patch: SimProfilePatch): SimProfile;
  /** The base URL once started, else `undefined`. */
  readonly url: string | undefined;
}

const DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024;

function initialProfile(options: SimServerOptions): SimProfile {
  const source = options.profile ?? SimProfileName.Stable;
  const base = typeof source === 'string' ? resolveProfile(source) : parseProfile(source);
  return options.overrides === undefined ? base : applyProfilePatch(base, options.overrides);
}

function faultRandomFor(profile: SimProfile): RandomSource {
  return profile.faultSeed === undefined ? Math.random : seededRandom('faults', profile.faultSeed);
}

function hostForUrl(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/**
 * Creates a simulated OpenAI-compatible chat model on plain `node:http`. Routes:
 * `POST /v1/chat/completions` (stream and non-stream), `GET /v1/models`, `GET /healthz`;
 * anything else is a 404 with an OpenAI error body.
 * @throws SimError `SIM_INVALID_PROFILE` / `SIM_UNKNOWN_PROFILE` for a bad profile.
 */
export function createSimServer(options: SimServerOptions = {}): SimServer {
  let profile = initialProfile(options);
  let faultRandom = faultRandomFor(profile);
  /** Arrival times (performance.now) of the requests accepted in the last second, under `capacityRps`. */
  const accepted: number[] = [];
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? 0;
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const stats = new SimStatsCollector(options.statsWindowSeconds ?? 60);
  const closing = new AbortController();
  // Responses not yet closed; close() waits for their 'close' events so stats are final.
  const openResponses = new Set<Promise<void>>();
  const server = createServer({ noDelay: true }, (req, res) => {
    const closed = new Promise<void>((resolve) => res.once('close', resolve));
    openResponses.add(closed);
    void closed.then(() => openResponses.delete(closed));
    handle(req, res).catch((error: unknown) => {
      options.logger?.error({ err: error }, 'sim request handler failed');
      if (!res.headersSent && !res.destroyed) {
        sendError(res, 500, 'The simulator failed unexpectedly.', OpenAiErrorType.Server);
      } else {
        res.destroy();
      }
    });
  });
  let url: string | undefined;
  let startPromise: Promise<{ readonly url: string }> | undefined;
  let closePromise: Promise<void> | undefined;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (req.method === 'POST' && path === '/v1/chat/completions') return handleChat(req, res);
    stats.other();
    if (req.method === 'GET' && path === '/healthz') {
      sendJson(res, 200, { status: 'ok', profile: profile.name });
    } else if (req.method === 'GET' && path === '/v1/models') {
      sendJson(res, 200, {
        object: 'list',
        data: [{ id: profile.name, object: 'model', created: 0, owned_by: 'shadow-replay-sim' }],
      });
    } else {
      sendError(res, 404, `Unknown request URL: ${req.method ?? '?'} ${path}`, OpenAiErrorType.InvalidRequest, {
        code: 'unknown_url',
      });
    }
  }

  async function handleChat(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const snapshot = profile;
    stats.begin();
    const gone = new AbortController();
    res.on('close', () => {
      const complete = res.writableFinished;
      if (!complete) gone.abort();
      stats.end(res.headersSent ? res.statusCode : undefined, !complete);
    });
    const signal = AbortSignal.any([closing.signal, gone.signal]);

    let raw: Buffer;
    try {
      raw = await readBody(req, maxBodyBytes);
    } catch (error) {
      if (error instanceof BodyTooLargeError) {
        sendError(res, 413, error.message, OpenAiErrorType.InvalidRequest, { code: 'request_too_large' });
        return;
      }
      res.destroy();
      return;
    }
    let body: unknown;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      sendError(
        res,
        400,
        'We could not parse the JSON body of your request. (HINT: This likely means you aren\'t using your HTTP library correctly.)',
        OpenAiErrorType.InvalidRequest,
      );
      return;
    }
    const parsed = parseChatRequest(body);
    if (!parsed.ok) {
      sendError(res, 400, parsed.message, OpenAiErrorType.InvalidRequest, { param: parsed.param, code: parsed.code });
      return;
    }
    const forced = parseFaultHeader(req.headers[SIM_FAULT_HEADER]);
    if (forced === false) {
      sendError(
        res,
        400,
        `Invalid ${SIM_FAULT_HEADER} header; expected one of ${[...simFaults, SIM_FAULT_NONE].join(', ')}.`,
        OpenAiErrorType.InvalidRequest,
        { param: SIM_FAULT_HEADER, code: 'invalid_value' },
      );
      return;
    }
    const fault = forced === SIM_FAULT_NONE ? undefined : (forced ?? overCapacity(snapshot) ?? drawFault(snapshot, faultRandom));
    options.onChat?.({ receivedAt: Date.now(), headers: req.headers, request: parsed.request, fault: fault ?? null });
    await respondToChat({ request: parsed.request, res, profile: snapshot, fault, signal, stats });
  }

  /** A 429 when the last second already took `capacityRps` requests; otherwise the request counts. */
  function overCapacity(snapshot: SimProfile): SimFault | undefined {
    if (snapshot.capacityRps === undefined) return undefined;
    const now = performance.now();
    while (accepted.length > 0 && (accepted[0] ?? now) <= now - 1000) accepted.shift();
    if (accepted.length >= snapshot.capacityRps) return SimFault.RateLimit;
    accepted.push(now);
    return undefined;
  }

  function start(): Promise<{ readonly url: string }> {
    if (closePromise !== undefined) {
      return Promise.reject(new SimError(SimErrorCode.Closed, 'sim server is closed'));
    }
    startPromise ??= new Promise((resolve, reject) => {
      const onError = (error: Error): void => {
        // Forget the failed attempt so start() can be retried (e.g. once the port is free).
        startPromise = undefined;
        reject(new SimError(SimErrorCode.ListenFailed, `sim server could not listen on ${host}:${port}: ${error.message}`, { cause: error }));
      };
      server.once('error', onError);
      server.listen(port, host, () => {
        server.off('error', onError);
        const address = server.address() as AddressInfo;
        url = `http://${hostForUrl(host)}:${address.port}`;
        resolve({ url });
      });
    });
    return startPromise;
  }

  function close(): Promise<void> {
    closePromise ??= (async () => {
      // A listen in progress must settle first, or server.close() would race it.
      await startPromise?.catch(() => undefined);
      closing.abort();
      if (!server.listening) return;
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await Promise.all(openResponses);
    })();
    return closePromise;
  }

  return {
    start,
    close,
    stats: () => stats.snapshot(),
    resetStats: () => stats.reset(),
    profile: () => profile,
    setProfile(patch: SimProfilePatch): SimProfile {
      const next = applyProfilePatch(profile, patch);
      if (next.faultSeed !== profile.faultSeed) faultRandom = faultRandomFor(next);
      profile = next;
      return profile;
    },
    get url() {
      return url;
    },
  };
}
