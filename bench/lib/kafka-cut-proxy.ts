/**
 * A TCP proxy in front of one Kafka broker that a benchmark can cut, so a client behind it
 * loses Kafka while the shared broker keeps running for everyone else.
 *
 * The trap: a Kafka client uses its bootstrap address only for the first metadata request and
 * then connects to the addresses the broker advertises. A plain proxy would be bypassed after
 * that first answer. So every response frame going back to the client has the broker's
 * advertised `host:port` (a length-prefixed string followed by a 32-bit port, in Metadata,
 * FindCoordinator and DescribeCluster responses) rewritten to the proxy's own port. The host
 * stays the same, so no length changes and the frames can be patched in place.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

/** How the proxy loses Kafka: like a stopped broker, or like a network that swallows packets. */
export const KafkaCutMode = {
  /** Connections are reset and new ones refused (what clients see when the broker stops). */
  refuse: 'refuse',
  /** Connections stay open and new ones are accepted, but nothing goes through or comes back. */
  blackhole: 'blackhole',
} as const;
export type KafkaCutMode = (typeof KafkaCutMode)[keyof typeof KafkaCutMode];

export interface KafkaCutProxy {
  /** `127.0.0.1:<port>`: the bootstrap address to give the client. */
  readonly address: string;
  /** Response frames in which the broker's address was rewritten. */
  readonly rewrites: number;
  readonly connectionsAccepted: number;
  readonly cutAt: number | null;
  /** From now on the broker is unreachable through the proxy. */
  cut(mode: KafkaCutMode): void;
  close(): Promise<void>;
}

/** `broker` is the single broker's address as clients bootstrap from it, and as it advertises itself. */
export async function startKafkaCutProxy(broker: string): Promise<KafkaCutProxy> {
  const separator = broker.lastIndexOf(':');
  const host = broker.slice(0, separator);
  const port = Number(broker.slice(separator + 1));
  if (separator <= 0 || !Number.isInteger(port)) throw new Error(`kafka cut proxy: "${broker}" is not host:port`);
  const advertised = Buffer.concat([Buffer.from(host, 'utf8'), int32(port)]);

  const sockets = new Set<Socket>();
  const upstreams = new Map<Socket, Socket>();
  let mode: KafkaCutMode | null = null;
  let rewrites = 0;
  let connectionsAccepted = 0;
  let cutAt: number | null = null;

  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
  };

  const server: Server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('kafka cut proxy: no port');
  const replacement = Buffer.concat([Buffer.from(host, 'utf8'), int32(address.port)]);

  // Nothing connects before the caller learns the address, so the handler can come after listen().
  server.on('connection', (client) => {
    connectionsAccepted++;
    track(client);
    if (mode === KafkaCutMode.blackhole) {
      client.resume();
      return;
    }
    const upstream = connect({ host, port });
    track(upstream);
    upstreams.set(client, upstream);
    client.pipe(upstream);
    const frames = new FrameSplitter((frame) => {
      if (mode !== null) return;
      if (patchAll(frame, advertised, replacement)) rewrites++;
      client.write(frame);
    });
    upstream.on('data', (chunk: Buffer) => frames.push(chunk));
    upstream.once('close', () => {
      if (mode !== KafkaCutMode.blackhole) client.destroy();
    });
    client.once('close', () => {
      upstreams.delete(client);
      upstream.destroy();
    });
  });

  let closing: Promise<void> | undefined;
  return {
    address: `127.0.0.1:${address.port}`,
    get rewrites() {
      return rewrites;
    },
    get connectionsAccepted() {
      return connectionsAccepted;
    },
    get cutAt() {
      return cutAt;
    },
    cut(next) {
      if (mode !== null) return;
      mode = next;
      cutAt = Date.now();
      if (next === KafkaCutMode.refuse) {
        server.close();
        for (const socket of sockets) socket.destroy();
        return;
      }
      // Blackhole: the client keeps its sockets, but nothing reaches the broker any more.
      for (const [client, upstream] of upstreams) {
        client.unpipe(upstream);
        upstream.destroy();
        client.resume();
      }
    },
    close: () =>
      (closing ??= (async () => {
        mode ??= KafkaCutMode.refuse;
        for (const socket of sockets) socket.destroy();
        if (server.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
      })()),
  };
}

function int32(value: number): Buffer {
  const buffer = Buffer.alloc(4);
  buffer.writeInt32BE(value);
  return buffer;
}

/** Replaces every occurrence of `from` by `to` (same length) in place; true when one was found. */
function patchAll(frame: Buffer, from: Buffer, to: Buffer): boolean {
  let found = false;
  for (let at = frame.indexOf(from); at !== -1; at = frame.indexOf(from, at + from.length)) {
    to.copy(frame, at);
    found = true;
  }
  return found;
}

/** Cuts a Kafka byte stream into whole frames (a 32-bit size, then that many bytes), so a pattern never straddles two reads. */
class FrameSplitter {
  readonly #onFrame: (frame: Buffer) => void;
  #pending: Buffer = Buffer.alloc(0);

  constructor(onFrame: (frame: Buffer) => void) {
    this.#onFrame = onFrame;
  }

  push(chunk: Buffer): void {
    this.#pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    while (this.#pending.length >= 4) {
      const end = 4 + this.#pending.readInt32BE(0);
      if (this.#pending.length < end) return;
      // A copy: the frame is patched in place and must not alias the next one.
      this.#onFrame(Buffer.from(this.#pending.subarray(0, end)));
      this.#pending = this.#pending.subarray(end);
    }
  }
}
