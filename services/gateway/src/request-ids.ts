import { randomUUID } from 'node:crypto';

/** Where the gateway takes the event's request id from (`gateway.requestIds`). */
export const RequestIdSource = { generate: 'generate', client: 'client' } as const;
export type RequestIdSource = (typeof RequestIdSource)[keyof typeof RequestIdSource];

/** What a client id must look like to be adopted: no `:` (a BullMQ job id trap), nothing to escape. */
const WELL_FORMED = /^[A-Za-z0-9._~-]{1,128}$/;
/** Adopted ids remembered per instance, to catch a client that reuses one (a retry, say). */
const REMEMBERED = 100_000;

/**
 * The request id of each published exchange: the Kafka key of its events and the join's key, so
 * it must be unique. By default every request gets a fresh UUID and the client's `x-request-id`
 * is only recorded (published among the headers): a client cannot make two requests share a key.
 * With `client`, a well-formed client id is adopted unless this instance adopted it recently;
 * then the client answers for uniqueness across instances and time.
 */
export class RequestIds {
  readonly #source: RequestIdSource;
  readonly #seen = new Set<string>();
  readonly #order: string[] = [];
  #next = 0;

  constructor(source: RequestIdSource) {
    this.#source = source;
  }

  /** The id for a request that carried `clientId` (or none). */
  next(clientId: string | undefined): string {
    if (this.#source !== RequestIdSource.client || clientId === undefined || !WELL_FORMED.test(clientId) || this.#seen.has(clientId)) return randomUUID();
    const evicted = this.#order[this.#next];
    if (evicted !== undefined) this.#seen.delete(evicted);
    this.#order[this.#next] = clientId;
    this.#next = (this.#next + 1) % REMEMBERED;
    this.#seen.add(clientId);
    return clientId;
  }
}
