/**
 * A loopback proxy in front of a simulated model that decides, per shadow request id, which
 * fault the simulator injects (through its `x-sim-fault` header). The decision is a hash of
 * the seed and the request id, so every call for the same request (a retry, a redelivery)
 * gets the same fault and a test can check each request's outcome, not only totals. The
 * simulator's own fault draw depends on the order calls arrive in, which concurrency shuffles.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SIM_FAULT_HEADER, SIM_FAULT_NONE, SimFault, hashToUnit } from '@shadow-replay/sim';
import { Pool } from 'undici';

const REQUEST_ID_HEADER = 'x-shadow-request-id';
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'host', 'upgrade', 'te', 'trailer']);

export type FaultRates = Partial<Record<SimFault, number>>;

export interface FaultProxy {
  readonly url: string;
  /** The fault given to a request id (`undefined`: none). */
  faultOf(requestId: string): SimFault | undefined;
  /** Calls seen per request id. */
  readonly calls: ReadonlyMap<string, number>;
  close(): Promise<void>;
}

export async function startFaultProxy(options: { target: string; seed: string; rates: FaultRates }): Promise<FaultProxy> {
  const order = Object.values(SimFault);
  const total = order.reduce((sum, fault) => sum + (options.rates[fault] ?? 0), 0);
  if (total > 1) throw new Error(`fault rates add up to ${total} > 1`);
  const faultOf = (requestId: string): SimFault | undefined => {
    const u = hashToUnit('fault-proxy', options.seed, requestId);
    let threshold = 0;
    for (const fault of order) {
      threshold += options.rates[fault] ?? 0;
      if (u < threshold) return fault;
    }
    return undefined;
  };
  const calls = new Map<string, number>();
  const upstream = new Pool(options.target, { connections: 256, pipelining: 1 });

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const requestId = String(req.headers[REQUEST_ID_HEADER] ?? '');
    calls.set(requestId, (calls.get(requestId) ?? 0) + 1);
    const gone = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) gone.abort();
    });
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (value !== undefined && !HOP_BY_HOP.has(name)) headers[name] = Array.isArray(value) ? value.join(', ') : value;
    }
    headers[SIM_FAULT_HEADER] = faultOf(requestId) ?? SIM_FAULT_NONE;
    const response = await upstream.request({
      path: req.url ?? '/',
      method: req.method ?? 'GET',
      headers,
      body: Buffer.concat(chunks),
      signal: gone.signal,
      headersTimeout: 0,
      bodyTimeout: 0,
    });
    const out: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(response.headers)) {
      if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
    }
    res.writeHead(response.statusCode, out);
    // Chunk by chunk, so SSE timing and a stream cut short reach the caller as the model sent them.
    for await (const chunk of response.body) res.write(chunk as Buffer);
    res.end();
  };

  const server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}`,
    faultOf,
    calls,
    close: () =>
      (closing ??= (async () => {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
        await upstream.destroy();
      })()),
  };
}
