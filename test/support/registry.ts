import http from 'node:http';
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';

/** One registry request's deadline; Apicurio answers these in milliseconds. */
const ATTEMPT_MS = 10_000;
const ATTEMPTS = 4;

/**
 * Registers a schema under a subject of its own and returns its id; the subject's removal is
 * registered first (a soft delete, then the permanent one: the registry refuses a permanent
 * delete of a live subject).
 *
 * Apicurio 3.3 now and then processes a request and never sends its answer (seen on
 * `PUT /config/{subject}`, which the client sends after a first registration, about once in a
 * few hundred: on a kept-alive connection the client then waits for the server's 30-minute idle
 * timeout). So the subject's compatibility is left at the registry's default (no config write),
 * every attempt has a deadline and its own connection, destroyed when the deadline passes, and
 * the registration (idempotent: the same schema under the same subject keeps its id) is sent again.
 * JSON schemas are compiled leniently (unknown formats such as `date-time` are ignored), as the
 * adapter does.
 */
export async function registerSchema(
  t: TestContext,
  registryUrl: string,
  subject: string,
  schema: { type: SchemaType.AVRO | SchemaType.JSON; schema: string },
): Promise<number> {
  t.after(async () => {
    for (const query of ['', '?permanent=true']) {
      const response = await retried(`deleting subject ${subject}${query}`, (signal) => fetch(`${registryUrl}/subjects/${encodeURIComponent(subject)}${query}`, { method: 'DELETE', signal }));
      assert.ok(response.status === 200 || response.status === 404, `deleting subject ${subject}${query}: HTTP ${response.status} ${await response.text()}`);
    }
  });
  return retried(`registering ${subject}`, async (signal) => {
    const agent = new http.Agent({ keepAlive: false });
    signal.addEventListener('abort', () => agent.destroy(), { once: true });
    const registry = new SchemaRegistry({ host: registryUrl, agent }, { [SchemaType.JSON]: { strict: false, logger: false } });
    const { id } = await registry.register(schema, { subject, compatibility: undefined });
    return id;
  });
}

/** Runs `attempt` up to {@link ATTEMPTS} times, each aborted after {@link ATTEMPT_MS}; only a deadline is retried. */
async function retried<T>(what: string, attempt: (signal: AbortSignal) => Promise<T>): Promise<T> {
  for (let n = 1; ; n++) {
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort(new Error(`${what}: no answer from the schema registry within ${ATTEMPT_MS} ms`));
    }, ATTEMPT_MS);
    try {
      const deadline = new Promise<never>((_, reject) => controller.signal.addEventListener('abort', () => reject(controller.signal.reason as Error), { once: true }));
      return await Promise.race([attempt(controller.signal), deadline]);
    } catch (error) {
      if (!timedOut || n >= ATTEMPTS) throw error;
    } finally {
      clearTimeout(timer);
    }
  }
}
