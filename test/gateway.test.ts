import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { describe, it, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { RequestEventSchema, ResponseEventSchema, ShadowConfigSchema, decodeEvent, type RequestEvent, type ResponseEvent, type ShadowConfig } from '@shadow-replay/contracts';
import { GatewayService, PublisherThread, gatewaySettings, type CaptureInput, type CountsReport } from '@shadow-replay/gateway';
import { ensureTopics, silentLogger, waitFor, type ConsumedRecord } from '@shadow-replay/platform';
import { createSimServer, type SimServerOptions } from '@shadow-replay/sim';
import { request } from 'undici';
import { stringify } from 'yaml';
import { testScope, type TestScope } from './support/harness.js';
import { freePort, httpGet } from './support/service-process.js';

const ROUTE = '/v1/chat/completions';
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const USER_AGENT = 'shadow-replay-gateway-test';
// Nothing listens on port 1: connections are refused at once.
const UNREACHABLE_KAFKA = '127.0.0.1:1';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
}

interface RunningGateway {
  scope: TestScope;
  gateway: GatewayService;
  url: string;
}

interface GatewayOptions {
  /** Merged into the `gateway` section of the configuration. */
  gateway?: Record<string, unknown>;
  /** Merged into the environment the settings are read from. */
  env?: Record<string, string>;
  flushDeadlineMs?: number;
  /** Create the two topics the gateway publishes to (it does not create them itself). */
  createTopics?: boolean;
}

async function startSim(t: TestContext, options: SimServerOptions = { profile: 'fast' }): Promise<string> {
  const sim = createSimServer(options);
  const { url } = await sim.start();
  t.after(() => sim.close());
  return url;
}

async function startGateway(t: TestContext, stableUrl: string, options: GatewayOptions = {}): Promise<RunningGateway> {
  const scope = testScope(t, () => ({
    // Tests name their requests (x-request-id) and find their events by those names.
    gateway: { listen: { port: 0 }, stable: { name: 'stable', baseUrl: stableUrl }, requestIds: 'client', ...options.gateway },
  }));
  const topics = scope.config.kafka.topics;
  if (options.createTopics ?? true) await ensureTopics(scope.kafka, [topics.requests, topics.stableResponses], 3);
  const gateway = new GatewayService({
    settings: gatewaySettings(scope.config, { ...scope.env, ...options.env }),
    log: silentLogger(),
    ...(options.flushDeadlineMs === undefined ? {} : { flushDeadlineMs: options.flushDeadlineMs }),
  });
  t.after(() => gateway.close());
  await gateway.start();
  return { scope, gateway, url: gateway.url };
}

async function send(baseUrl: string, path: string, init: { method?: 'GET' | 'POST' | 'PUT'; body?: string; headers?: Record<string, string> } = {}): Promise<Reply> {
  const response = await request(`${baseUrl}${path}`, {
    method: init.method ?? 'POST',
    headers: { 'content-type': 'application/json', 'user-agent': USER_AGENT, ...init.headers },
    ...(init.body === undefined ? {} : { body: init.body }),
  });
  return { status: response.statusCode, headers: response.headers, text: await response.body.text() };
}

function chat(baseUrl: string, body: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  return send(baseUrl, ROUTE, { body: typeof body === 'string' ? body : JSON.stringify(body), headers });
}

function chatBody(prompt: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { model: 'sim-model', messages: [{ role: 'system', content: 'You are terse.' }, { role: 'user', content: prompt }], ...extra };
}

// The sim draws a random completion id and stamps `created` with the clock for every answer;
// everything else in a non-faulty answer is a function of the prompt.
function withoutPerResponseFields(text: string): string {
  return text.replace(/"id":"chatcmpl-[0-9a-f]+"/g, '"id":"<id>"').replace(/"created":\d+/g, '"created":0');
}

async function scrape(gatewayUrl: string): Promise<string> {
  const reply = await send(gatewayUrl, '/metrics', { method: 'GET' });
  assert.equal(reply.status, 200, 'GET /metrics answers 200');
  return reply.text;
}

/** Sum of the series of `name` whose labels include `labels`; undefined when no series matches. */
function metricValue(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  let total: number | undefined;
  for (const line of text.split('\n')) {
    const match = /^([A-Za-z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match === null || match[1] !== name) continue;
    const found = new Map([...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((label) => [label[1], label[2]]));
    if (Object.entries(labels).every(([key, value]) => found.get(key) === value)) total = (total ?? 0) + Number(match[3]);
  }
  return total;
}

async function waitForPublished(gatewayUrl: string, events: number): Promise<void> {
  await waitFor(async () => (metricValue(await scrape(gatewayUrl), 'shadow_gateway_publish_sent_total') ?? 0) >= events, {
    timeoutMs: 30_000,
    intervalMs: 100,
    what: `${events} events acknowledged by Kafka`,
  });
}

interface Published<T> {
  key: string | undefined;
  event: T;
}

function decodeAll<T>(records: ConsumedRecord[], decode: (value: Buffer | null) => T): Array<Published<T>> {
  return records.map((record) => ({ key: record.key?.toString(), event: decode(record.value) }));
}

async function publishedEvents(scope: TestScope): Promise<{ requests: Array<Published<RequestEvent>>; responses: Array<Published<ResponseEvent>> }> {
  const topics = scope.config.kafka.topics;
  const requests = decodeAll(await scope.read(topics.requests), (value) => {
    const decoded = decodeEvent(RequestEventSchema, value);
    assert.ok(decoded.ok, `undecodable RequestEvent: ${decoded.ok ? '' : decoded.reason}`);
    return decoded.value;
  });
  const responses = decodeAll(await scope.read(topics.stableResponses), (value) => {
    const decoded = decodeEvent(ResponseEventSchema, value);
    assert.ok(decoded.ok, `undecodable ResponseEvent: ${decoded.ok ? '' : decoded.reason}`);
    return decoded.value;
  });
  return { requests, responses };
}

function only<T>(list: Array<Published<T>>, requestId: string, what: string): T {
  const matching = list.filter((entry) => entry.key === requestId);
  assert.equal(matching.length, 1, `${what}: exactly one record keyed ${requestId} (found keys ${list.map((entry) => entry.key).join(', ')})`);
  const [entry] = matching;
  assert.ok(entry);
  return entry.event;
}

interface SseSummary {
  content: string;
  finishReason: string | null;
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number } | null;
  done: boolean;
}

function readSse(text: string): SseSummary {
  const summary: SseSummary = { content: '', finishReason: null, usage: null, done: false };
  // The last piece is an unfinished line, or empty when the text ends with a newline.
  for (const line of text.split('\n').slice(0, -1)) {
    if (!line.startsWith('data: ')) continue;
    const data = line.slice('data: '.length);
    if (data === '[DONE]') {
      summary.done = true;
      continue;
    }
    const chunk = JSON.parse(data) as {
      choices: Array<{ delta: { content?: string }; finish_reason: string | null }>;
      usage?: SseSummary['usage'];
    };
    for (const choice of chunk.choices) {
      summary.content += choice.delta.content ?? '';
      summary.finishReason = choice.finish_reason ?? summary.finishReason;
    }
    if (chunk.usage) summary.usage = chunk.usage;
  }
  return summary;
}

async function closedPortUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
  return `http://127.0.0.1:${port}`;
}

function openAiErrorText(message: string, type: string, code: string): string {
  return JSON.stringify({ error: { message, type, param: null, code } });
}

/** What the live path hands the publisher thread for one non-streamed exchange. */
function capturedExchange(id: string): CaptureInput {
  return {
    requestId: id,
    occurredAt: Date.now(),
    headers: {},
    sampling: { rate: 1, key: null, sampled: true },
    status: 200,
    failure: null,
    streamed: false,
    aborted: false,
    body: Buffer.from(JSON.stringify(chatBody(`question ${id}`))),
    chunks: [Buffer.from(JSON.stringify({ id: 'c', object: 'chat.completion', created: 0, model: 'sim', choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }] }))],
    chunkTimes: [],
    endAt: performance.now(),
  };
}

describe('the gateway on real Kafka', () => {
  it('relays a non-streamed completion exactly as the stable model answers it and publishes the request and the stable answer keyed by the request id', async (t) => {
    const stableUrl = await startSim(t);
    const { scope, url } = await startGateway(t, stableUrl);
    const body = chatBody('Name three uses of a message queue.');

    const direct = await chat(stableUrl, body);
    const before = Date.now();
    const viaGateway = await chat(url, body, { 'x-request-id': 'req-nonstream-1' });
    const withoutId = await chat(url, body);
    const after = Date.now();

    assert.equal(direct.status, 200);
    assert.equal(viaGateway.status, direct.status);
    assert.deepEqual(JSON.parse(withoutPerResponseFields(viaGateway.text)), JSON.parse(withoutPerResponseFields(direct.text)));
    assert.equal(viaGateway.headers['content-type'], 'application/json');
    assert.equal(viaGateway.headers['x-request-id'], 'req-nonstream-1', 'the request id the user sent comes back');
    const generatedId = withoutId.headers['x-request-id'];
    assert.equal(typeof generatedId, 'string');
    assert.match(String(generatedId), UUID, 'a request without an id gets a generated UUID');
    assert.equal(withoutId.status, 200);

    await waitForPublished(url, 4);
    const { requests, responses } = await publishedEvents(scope);
    assert.equal(requests.length, 2, 'one RequestEvent per user request');
    assert.equal(responses.length, 2, 'one stable ResponseEvent per user request');

    const answer = JSON.parse(viaGateway.text) as {
      id: string;
      model: string;
      choices: Array<{ message: { content: string }; finish_reason: string }>;
      usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
    };
    const requestEvent = only(requests, 'req-nonstream-1', 'request topic');
    assert.equal(requestEvent.requestId, 'req-nonstream-1');
    assert.equal(requestEvent.route, ROUTE);
    assert.deepEqual(requestEvent.body, body);
    assert.deepEqual(requestEvent.headers, { 'user-agent': USER_AGENT, 'x-request-id': 'req-nonstream-1' });
    assert.deepEqual(requestEvent.sampling, { rate: 1, key: null, sampled: true });
    assert.equal(requestEvent.tenant, undefined);
    assert.ok(requestEvent.occurredAt >= before && requestEvent.occurredAt <= after, `occurredAt ${requestEvent.occurredAt} within the call`);

    const responseEvent = only(responses, 'req-nonstream-1', 'stable response topic');
    assert.equal(responseEvent.requestId, 'req-nonstream-1');
    assert.equal(responseEvent.arm, 'stable');
    assert.equal(responseEvent.experimentId, undefined);
    assert.equal(responseEvent.outcome, 'ok');
    assert.equal(responseEvent.status, 200);
    assert.equal(responseEvent.error, null);
    assert.equal(responseEvent.streamed, false);
    assert.deepEqual(responseEvent.endpoint, { name: 'stable', model: 'sim-model' });
    assert.deepEqual(responseEvent.response, {
      id: answer.id,
      model: 'sim-model',
      choices: [{ index: 0, content: answer.choices[0]?.message.content, toolCalls: [], finishReason: answer.choices[0]?.finish_reason }],
    });
    assert.ok((answer.choices[0]?.message.content.length ?? 0) > 0, 'the sim answered with text');
    assert.deepEqual(responseEvent.usage, { prompt: answer.usage.prompt_tokens, completion: answer.usage.completion_tokens, total: answer.usage.total_tokens, source: 'usage' });
    assert.equal(responseEvent.timing.sentAt, requestEvent.occurredAt);
    assert.ok(responseEvent.timing.e2eMs > 0, `e2eMs ${responseEvent.timing.e2eMs} > 0`);
    assert.deepEqual(
      { ttftMs: responseEvent.timing.ttftMs, tpotMs: responseEvent.timing.tpotMs, itl: responseEvent.timing.itl, outputTokensPerSec: responseEvent.timing.outputTokensPerSec },
      { ttftMs: null, tpotMs: null, itl: null, outputTokensPerSec: null },
      'an answer that arrives whole has no token timing',
    );

    only(requests, String(generatedId), 'request topic');
    assert.equal(only(responses, String(generatedId), 'stable response topic').outcome, 'ok');
  });

  it('relays a streamed completion byte for byte and publishes the assembled answer with TTFT and reported usage', async (t) => {
    const stableUrl = await startSim(t, { profile: 'stable', overrides: { timeScale: 0.05 } });
    const { scope, url } = await startGateway(t, stableUrl);
    const withUsage = chatBody('Describe a log-structured storage engine.', { stream: true, stream_options: { include_usage: true } });
    const withoutUsage = chatBody('Describe a log-structured storage engine.', { stream: true });

    const direct = await chat(stableUrl, withUsage);
    const viaGateway = await chat(url, withUsage, { 'x-request-id': 'req-stream-usage' });
    const estimated = await chat(url, withoutUsage, { 'x-request-id': 'req-stream-estimate' });

    assert.equal(viaGateway.status, 200);
    assert.equal(viaGateway.headers['content-type'], 'text/event-stream; charset=utf-8');
    assert.equal(viaGateway.headers['x-request-id'], 'req-stream-usage');
    assert.equal(withoutPerResponseFields(viaGateway.text), withoutPerResponseFields(direct.text), 'the client receives what the sim sends');
    const sse = readSse(viaGateway.text);
    assert.equal(sse.done, true);
    assert.ok(sse.usage, 'the sim sent a usage chunk');
    assert.ok(sse.content.length > 0);

    await waitForPublished(url, 4);
    const { responses } = await publishedEvents(scope);
    assert.equal(responses.length, 2);
    const event = only(responses, 'req-stream-usage', 'stable response topic');
    assert.equal(event.outcome, 'ok');
    assert.equal(event.status, 200);
    assert.equal(event.error, null);
    assert.equal(event.streamed, true);
    assert.deepEqual(event.response?.choices, [{ index: 0, content: sse.content, toolCalls: [], finishReason: sse.finishReason }]);
    assert.equal(sse.finishReason, 'stop');
    assert.deepEqual(event.usage, { prompt: sse.usage.prompt_tokens, completion: sse.usage.completion_tokens, total: sse.usage.total_tokens, source: 'usage' });
    assert.notEqual(event.timing.ttftMs, null);
    assert.ok((event.timing.ttftMs ?? 0) > 0 && (event.timing.ttftMs ?? 0) <= event.timing.e2eMs, `0 < ttftMs ${event.timing.ttftMs} <= e2eMs ${event.timing.e2eMs}`);
    assert.notEqual(event.timing.tpotMs, null, 'a stream of many chunks has a time per output token');

    const withoutUsageEvent = only(responses, 'req-stream-estimate', 'stable response topic');
    assert.equal(readSse(estimated.text).usage, null, 'no usage chunk was asked for');
    assert.equal(withoutUsageEvent.usage?.source, 'estimate', 'without include_usage the gateway estimates tokens');
    assert.equal(withoutUsageEvent.response?.choices[0]?.content, sse.content, 'the same prompt gives the same answer');
  });

  it('publishes only allowlisted headers and takes the tenant from x-tenant-id', async (t) => {
    const stableUrl = await startSim(t);
    const { scope, url } = await startGateway(t, stableUrl);

    const reply = await chat(url, chatBody('Which headers survive?'), {
      'x-request-id': 'req-headers',
      authorization: 'Bearer sk-user-secret',
      cookie: 'session=abc123',
      'x-api-key': 'key-secret',
      'x-tenant-id': 'tenant-42',
      'x-conversation-id': 'conv-7',
      'x-sim-fault': 'none',
    });
    assert.equal(reply.status, 200);

    await waitForPublished(url, 2);
    const { requests } = await publishedEvents(scope);
    const event = only(requests, 'req-headers', 'request topic');
    assert.deepEqual(event.headers, { 'user-agent': USER_AGENT, 'x-tenant-id': 'tenant-42', 'x-conversation-id': 'conv-7', 'x-request-id': 'req-headers' });
    assert.equal(event.tenant, 'tenant-42');
    assert.equal(event.conversationId, 'conv-7');
    const raw = JSON.stringify(event);
    for (const secret of ['sk-user-secret', 'abc123', 'key-secret']) assert.ok(!raw.includes(secret), `${secret} does not reach Kafka`);
  });

  it('relays upstream 500 and 429 answers unchanged and publishes them as retryable errors with their status', async (t) => {
    const stableUrl = await startSim(t);
    const { scope, url } = await startGateway(t, stableUrl);
    const body = chatBody('Fail for me.');

    for (const [fault, status, requestId] of [
      ['error', 500, 'req-500'],
      ['rate_limit', 429, 'req-429'],
    ] as const) {
      const direct = await chat(stableUrl, body, { 'x-sim-fault': fault });
      const viaGateway = await chat(url, body, { 'x-sim-fault': fault, 'x-request-id': requestId });
      assert.equal(direct.status, status);
      assert.equal(viaGateway.status, status);
      assert.equal(viaGateway.text, direct.text, `the ${status} body is relayed as it is`);
      assert.equal(viaGateway.headers['retry-after'], direct.headers['retry-after']);
      assert.equal(viaGateway.headers['x-request-id'], requestId);
    }
    assert.equal((await chat(url, body, { 'x-sim-fault': 'rate_limit' })).headers['retry-after'], '1', 'the sim asks to retry after 1 s');

    await waitForPublished(url, 6);
    const { responses } = await publishedEvents(scope);
    for (const [requestId, status] of [
      ['req-500', 500],
      ['req-429', 429],
    ] as const) {
      const event = only(responses, requestId, 'stable response topic');
      assert.equal(event.arm, 'stable');
      assert.equal(event.outcome, 'error');
      assert.equal(event.status, status);
      assert.deepEqual(event.error, { code: 'http_status', message: `the stable model answered HTTP ${status}`, retryable: true });
      assert.equal(event.response, null);
      assert.equal(event.usage, null);
      assert.equal(event.streamed, false);
    }
  });

  it('publishes a truncated stream as an incomplete error while the user gets what the model sent', async (t) => {
    const stableUrl = await startSim(t);
    const { scope, url } = await startGateway(t, stableUrl);
    const body = chatBody('Stop half way through.', { stream: true });

    const direct = await chat(stableUrl, body, { 'x-sim-fault': 'truncate' });
    const viaGateway = await chat(url, body, { 'x-sim-fault': 'truncate', 'x-request-id': 'req-truncated' });
    assert.equal(viaGateway.status, 200);
    assert.equal(withoutPerResponseFields(viaGateway.text), withoutPerResponseFields(direct.text));
    const sse = readSse(viaGateway.text);
    assert.equal(sse.done, false, 'no [DONE] in a truncated stream');

    await waitForPublished(url, 2);
    const event = only((await publishedEvents(scope)).responses, 'req-truncated', 'stable response topic');
    assert.equal(event.outcome, 'error');
    assert.equal(event.status, 200);
    assert.deepEqual(event.error, { code: 'truncated_stream', message: 'the stable stream ended before a finish reason or [DONE]', retryable: true });
    assert.equal(event.streamed, true);
    assert.deepEqual(event.response?.choices, [{ index: 0, content: sse.content, toolCalls: [], finishReason: null }]);
  });

  it('forwards bodies it cannot shadow to the stable model, relays its 400 and publishes nothing for them', async (t) => {
    const stableUrl = await startSim(t);
    const { scope, url } = await startGateway(t, stableUrl);

    const notJson = '{"model": "sim-model", "messages": [';
    const notChat = JSON.stringify({ model: 'sim-model', prompt: 'no messages here' });
    for (const [raw, requestId] of [
      [notJson, 'req-not-json'],
      [notChat, 'req-not-chat'],
    ] as const) {
      const direct = await chat(stableUrl, raw);
      const viaGateway = await chat(url, raw, { 'x-request-id': requestId });
      assert.equal(direct.status, 400);
      assert.equal(viaGateway.status, 400, 'the stable model, not the gateway, rejects the body');
      assert.equal(viaGateway.text, direct.text);
      assert.equal(viaGateway.headers['x-request-id'], requestId);
    }
    const afterRejected = await scrape(url);
    assert.equal(metricValue(afterRejected, 'shadow_gateway_unpublishable_total', { reason: 'invalid_body' }), 2);
    assert.equal(metricValue(afterRejected, 'shadow_gateway_requests_total', { route: ROUTE, status: '4xx' }), 2);

    // The buffer is first in, first out: once the events of a later request are in Kafka,
    // anything published for the rejected bodies would be there too.
    assert.equal((await chat(url, chatBody('A valid one after the rejected ones.'), { 'x-request-id': 'req-valid' })).status, 200);
    await waitForPublished(url, 2);
    const { requests, responses } = await publishedEvents(scope);
    assert.deepEqual(requests.map((entry) => entry.key), ['req-valid']);
    assert.deepEqual(responses.map((entry) => entry.key), ['req-valid']);
    assert.equal(metricValue(await scrape(url), 'shadow_gateway_publish_sent_total'), 2);
  });

  it('answers a wrong method with 405 and an unknown route with 404 in the OpenAI error shape, without calling the stable model', async (t) => {
    const sim = createSimServer({ profile: 'fast' });
    const stableUrl = (await sim.start()).url;
    t.after(() => sim.close());
    const { url } = await startGateway(t, stableUrl);

    const wrongMethod = await send(url, ROUTE, { method: 'GET' });
    assert.equal(wrongMethod.status, 405);
    assert.equal(wrongMethod.headers.allow, 'POST');
    assert.equal(wrongMethod.headers['content-type'], 'application/json');
    assert.equal(wrongMethod.text, openAiErrorText(`${ROUTE} accepts POST only`, 'invalid_request_error', 'method_not_allowed'));

    const unknown = await send(url, '/v1/no-such-route', { body: '{}' });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.text, openAiErrorText('no route for POST /v1/no-such-route', 'invalid_request_error', 'not_found'));

    assert.equal(sim.stats().requestsTotal, 0, 'the stable model saw none of them');
    assert.equal(sim.stats().otherRequests, 0);
  });

  it('refuses a body over maxBodyBytes with 413 in the OpenAI error shape, without calling the stable model', async (t) => {
    const sim = createSimServer({ profile: 'fast' });
    const stableUrl = (await sim.start()).url;
    t.after(() => sim.close());
    const { url } = await startGateway(t, stableUrl, { gateway: { maxBodyBytes: 1024 } });

    const tooLarge = await chat(url, chatBody('x'.repeat(4096)));
    assert.equal(tooLarge.status, 413);
    assert.equal(tooLarge.text, openAiErrorText('request body is larger than 1024 bytes', 'invalid_request_error', 'request_too_large'));
    assert.equal(sim.stats().requestsTotal, 0, 'the stable model never saw it');

    const fits = await chat(url, chatBody('small enough'));
    assert.equal(fits.status, 200, 'a body under the limit still goes through');
  });

  it('serves /healthz, /readyz and counts proxied requests and published events in /metrics', async (t) => {
    const stableUrl = await startSim(t);
    const { url } = await startGateway(t, stableUrl);

    const health = await send(url, '/healthz', { method: 'GET' });
    assert.equal(health.status, 200);
    assert.deepEqual(JSON.parse(health.text), { status: 'ok' });
    const ready = await send(url, '/readyz', { method: 'GET' });
    assert.equal(ready.status, 200);
    assert.deepEqual(JSON.parse(ready.text), { status: 'ready' });

    const before = await scrape(url);
    assert.equal(metricValue(before, 'shadow_gateway_requests_total'), undefined, 'no request counted yet');
    assert.equal(metricValue(before, 'shadow_gateway_publish_sent_total'), 0);

    for (let index = 0; index < 3; index++) assert.equal((await chat(url, chatBody(`metrics ${index}`))).status, 200);
    assert.equal((await chat(url, chatBody('metrics error'), { 'x-sim-fault': 'error' })).status, 500);

    await waitForPublished(url, 8);
    const after = await scrape(url);
    assert.equal(metricValue(after, 'shadow_gateway_requests_total', { service: 'gateway', route: ROUTE, status: '2xx' }), 3);
    assert.equal(metricValue(after, 'shadow_gateway_requests_total', { service: 'gateway', route: ROUTE, status: '5xx' }), 1);
    assert.equal(metricValue(after, 'shadow_gateway_publish_sent_total', { service: 'gateway' }), 8);
    assert.equal(metricValue(after, 'shadow_gateway_publish_dropped_total'), undefined, 'nothing dropped');
    assert.equal(metricValue(after, 'shadow_gateway_upstream_seconds_count', { route: ROUTE }), 4);
    assert.equal(metricValue(after, 'shadow_gateway_buffer_depth'), 0);
  });

  it('counts as dropped what a publisher thread held when it died, and every event after', async (t) => {
    const scope = testScope(t, () => ({ gateway: { listen: { port: 0 }, stable: { name: 'stable', baseUrl: 'http://127.0.0.1:1' } } }));
    const dropped: number[] = [];
    const thread = new PublisherThread({
      settings: gatewaySettings(scope.config, { ...scope.env, KAFKA_BROKERS: UNREACHABLE_KAFKA }),
      log: silentLogger(),
      onCounts: (counts: CountsReport) => dropped.push(counts.dropped.publisher_failed ?? 0),
    });
    t.after(() => thread.close(100));
    await thread.start();
    const exchange = (id: string) => capturedExchange(id);
    // Kafka is unreachable: every event waits in the thread's buffer.
    for (let i = 0; i < 20; i++) thread.offer(exchange(`held-${i}`));
    await thread.sync();
    assert.equal(thread.depth, 40, 'a request and a stable answer per exchange, waiting');
    const total = () => dropped.reduce((sum, value) => sum + value, 0);
    assert.equal(total(), 0);
    await thread.worker?.terminate();
    await waitFor(() => total() === 40, { timeoutMs: 5_000, what: 'the events the dead thread held to be counted dropped' });
    thread.offer(exchange('after'));
    assert.equal(total(), 42, 'an exchange offered after the death is dropped and counted at once');
    assert.equal(thread.depth, 0);
  });

  it('keeps answering users when Kafka is unreachable and drops what does not fit in the bounded buffer', async (t) => {
    const stableUrl = await startSim(t);
    const maxEvents = 10;
    const { gateway, url } = await startGateway(t, stableUrl, {
      gateway: { buffer: { maxEvents } },
      env: { KAFKA_BROKERS: UNREACHABLE_KAFKA },
      flushDeadlineMs: 200,
      createTopics: false,
    });

    let deepest = 0;
    for (let wave = 0; wave < 5; wave++) {
      const replies = await Promise.all(
        Array.from({ length: 10 }, async (_, index) => {
          const reply = await chat(url, chatBody(`kafka is down ${wave}-${index}`));
          deepest = Math.max(deepest, gateway.bufferDepth);
          return reply;
        }),
      );
      assert.deepEqual(
        replies.map((reply) => reply.status),
        Array.from({ length: 10 }, () => 200),
        `wave ${wave}: every user request succeeds`,
      );
    }

    assert.ok(deepest <= maxEvents, `buffer depth ${deepest} never exceeds ${maxEvents}`);
    // A scrape waits for the publisher thread's report of everything handed over before it.
    const metrics = await scrape(url);
    assert.equal(gateway.bufferDepth, maxEvents, 'the buffer is full');
    assert.equal(metricValue(metrics, 'shadow_gateway_requests_total', { status: '2xx' }), 50);
    // 50 requests × 2 events; the first 5 requests fill the buffer and nothing ever leaves it.
    assert.equal(metricValue(metrics, 'shadow_gateway_publish_dropped_total', { reason: 'buffer_full' }), 100 - maxEvents);
    assert.equal(metricValue(metrics, 'shadow_gateway_publish_dropped_total', { reason: 'send_failed' }), undefined);
    assert.equal(metricValue(metrics, 'shadow_gateway_publish_sent_total'), 0);
    assert.equal(metricValue(metrics, 'shadow_gateway_buffer_depth'), maxEvents);

    const started = performance.now();
    await gateway.close();
    const closeMs = performance.now() - started;
    assert.equal(gateway.bufferDepth, 0, 'what could not be flushed is dropped at shutdown');
    // Generous bound: the flush deadline is 200 ms; without it close() waits ~30 s for kafkajs's connect retries.
    assert.ok(closeMs < 5_000, `close() took ${Math.round(closeMs)} ms with flushDeadlineMs 200`);
  });

  it('answers 502 in the OpenAI error shape when the stable model is down and publishes the failure', async (t) => {
    const stableUrl = await closedPortUrl();
    const { scope, url } = await startGateway(t, stableUrl);

    const reply = await chat(url, chatBody('Is anyone there?'), { 'x-request-id': 'req-down' });
    assert.equal(reply.status, 502);
    assert.equal(reply.headers['content-type'], 'application/json');
    assert.equal(reply.text, openAiErrorText('the model endpoint is unreachable', 'server_error', 'upstream_unavailable'));
    assert.equal(reply.headers['x-request-id'], 'req-down', "the gateway's own errors carry the request id too");

    await waitForPublished(url, 2);
    const { requests, responses } = await publishedEvents(scope);
    assert.equal(only(requests, 'req-down', 'request topic').requestId, 'req-down');
    const event = only(responses, 'req-down', 'stable response topic');
    assert.equal(event.outcome, 'error');
    assert.equal(event.status, null, 'no status: the model never answered');
    assert.equal(event.response, null);
    assert.equal(event.usage, null);
    assert.equal(event.error?.retryable, true);
    assert.equal(event.error?.code, 'connect_error', 'the same code a candidate call gets for a refused connection');
    assert.equal(metricValue(await scrape(url), 'shadow_gateway_requests_total', { status: '5xx' }), 1);
  });

  it('publishes the stable answer as aborted when the user leaves in the middle of a stream', async (t) => {
    const stableUrl = await startSim(t, { profile: 'stable', overrides: { timeScale: 0.5 } });
    const { scope, url } = await startGateway(t, stableUrl);

    const controller = new AbortController();
    const response = await request(`${url}${ROUTE}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'req-abandoned' },
      body: JSON.stringify(chatBody('A long answer nobody waits for.', { stream: true })),
      signal: controller.signal,
    });
    assert.equal(response.statusCode, 200);
    let received = '';
    await assert.rejects(async () => {
      for await (const chunk of response.body) {
        received += (chunk as Buffer).toString('utf8');
        if (readSse(received).content.length > 0) controller.abort();
      }
    }, /abort/i);
    assert.equal(readSse(received).finishReason, null, 'the user left before the end of the answer');

    await waitForPublished(url, 2);
    const event = only((await publishedEvents(scope)).responses, 'req-abandoned', 'stable response topic');
    assert.equal(event.outcome, 'aborted');
    assert.equal(event.status, 200);
    assert.equal(event.error, null);
    assert.equal(event.streamed, true);
  });

  it(
    'keeps a connection usable, or closes it, after refusing an oversized body',
    async (t) => {
      const stableUrl = await startSim(t);
      const { url } = await startGateway(t, stableUrl, { gateway: { maxBodyBytes: 1024 } });
      const { hostname, port } = new URL(url);
      const socket = connect(Number(port), hostname);
      let received = '';
      let closed = false;
      socket.on('data', (data: Buffer) => (received += data.toString('latin1')));
      socket.on('close', () => (closed = true));
      // A reset after the 413 is an acceptable way to refuse the rest of the body.
      socket.on('error', () => undefined);
      // Destroyed here rather than in t.after: a stalled connection would hold up the gateway's close().
      try {
        // A raw socket, because an HTTP client may or may not reuse the connection.
        const oversized = Buffer.alloc(1_000_000, 'x');
        const next = JSON.stringify(chatBody('the request after the oversized one'));
        const head = (length: number) => `POST ${ROUTE} HTTP/1.1\r\nhost: ${hostname}\r\ncontent-type: application/json\r\ncontent-length: ${length}\r\n\r\n`;
        socket.write(head(oversized.length));
        socket.write(oversized);
        socket.write(head(Buffer.byteLength(next)) + next);

        const responses = () => received.match(/^HTTP\/1\.1 \d{3}/gm) ?? [];
        await waitFor(() => closed || responses().length >= 2, { timeoutMs: 5_000, what: 'a second response, or the connection closed' });
        assert.equal(responses()[0], 'HTTP/1.1 413');
        if (!closed) assert.equal(responses()[1], 'HTTP/1.1 200');
      } finally {
        socket.destroy();
      }
    },
  );

  it(
    'creates the topics it publishes to when it starts and kafka.createTopics is true',
    async (t) => {
      const stableUrl = await startSim(t);
      const { scope } = await startGateway(t, stableUrl, { createTopics: false });
      assert.equal(scope.config.kafka.createTopics, true);

      const admin = scope.kafka.admin();
      await admin.connect();
      t.after(() => admin.disconnect());
      const { requests, stableResponses } = scope.config.kafka.topics;
      // Created in the background once Kafka answers, so a broker that is down never delays start().
      await waitFor(
        async () => {
          const existing = new Set(await admin.listTopics());
          return [requests, stableResponses].every((topic) => existing.has(topic));
        },
        { timeoutMs: 20_000, what: 'the gateway to create its topics' },
      );
    },
  );

  it('publishes no secret pattern and no credential header, whatever the request carried', async (t) => {
    const stableUrl = await startSim(t);
    const { scope, url } = await startGateway(t, stableUrl, { gateway: { redaction: { patterns: [{ name: 'ticket', regex: 'TICKET-\\d+' }] } } });
    const secrets = ['jane@example.com', '+44 20 7946 0958', '4111-1111-1111-1111', 'sk-live0123456789abcdefXYZ', 'TICKET-4242'];
    const prompt = `Please help: ${secrets.join(' / ')}`;
    const reply = await chat(url, chatBody(prompt), { 'x-request-id': 'req-private', authorization: 'Bearer user-token-123', cookie: 'session=abc', 'x-api-key': 'k-999' });
    assert.equal(reply.status, 200, 'the user request itself is untouched');
    await waitForPublished(url, 2);
    const raw = [...(await scope.read(scope.config.kafka.topics.requests)), ...(await scope.read(scope.config.kafka.topics.stableResponses))]
      .map((record) => record.value?.toString('utf8') ?? '')
      .join('\n');
    for (const secret of [...secrets, 'user-token-123', 'session=abc', 'k-999']) assert.ok(!raw.includes(secret), `${secret} reached Kafka`);
    const event = only((await publishedEvents(scope)).requests, 'req-private', 'request topic');
    assert.equal(event.body.messages.at(-1)?.content, 'Please help: [REDACTED:email] / [REDACTED:phone] / [REDACTED:card] / [REDACTED:apiKey] / [REDACTED:ticket]');
  });

  it('publishes no secret pattern from any field of the request or of the stable answer, keeping their structure', async (t) => {
    const stableUrl = await startSim(t);
    const { scope, url } = await startGateway(t, stableUrl);
    const secrets = {
      user: 'jane.user@example.com',
      metadata: 'ops-team@example.org',
      metadataKey: 'owner@example.net',
      toolDescription: 'sk-tooldescription0123456789',
      toolEnum: 'secret.person@example.com',
      historyArguments: '4111 1111 1111 1111',
      toolResult: '+1 415-555-0132',
      header: 'agent@example.io',
    };
    const body = {
      model: 'sim-model',
      user: secrets.user,
      metadata: { contact: secrets.metadata, [secrets.metadataKey]: 'owner' },
      tools: [
        {
          type: 'function',
          function: {
            name: 'lookup_account',
            description: `Looks up an account; admin key ${secrets.toolDescription}`,
            // The sim fills arguments from the enum: the stable answer's tool call carries the address.
            parameters: { type: 'object', properties: { contact: { type: 'string', enum: [secrets.toolEnum] } }, required: ['contact'] },
          },
        },
      ],
      tool_choice: 'required',
      messages: [
        { role: 'user', content: 'Find my account.' },
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'lookup_account', arguments: JSON.stringify({ card: secrets.historyArguments }) } }] },
        { role: 'tool', tool_call_id: 'call_1', content: `holder phone ${secrets.toolResult}` },
        { role: 'user', content: 'Look it up again.' },
      ],
    };
    const reply = await chat(url, body, { 'x-request-id': 'req-private-fields', 'user-agent': `bot (${secrets.header})` });
    assert.equal(reply.status, 200);
    assert.ok(reply.text.includes(secrets.toolEnum), 'the user gets the real tool call');

    await waitForPublished(url, 2);
    const raw = [...(await scope.read(scope.config.kafka.topics.requests)), ...(await scope.read(scope.config.kafka.topics.stableResponses))].map((record) => record.value?.toString('utf8') ?? '').join('\n');
    for (const [field, secret] of Object.entries(secrets)) assert.ok(!raw.includes(secret), `${field}: ${secret} reached Kafka`);

    const { requests, responses } = await publishedEvents(scope);
    const published = only(requests, 'req-private-fields', 'request topic').body as unknown as typeof body;
    assert.equal((published as { user?: string }).user, undefined, 'the end user identifier is dropped');
    assert.deepEqual(published.metadata, { contact: '[REDACTED:email]', '[REDACTED:email]': 'owner' });
    assert.equal(published.tools[0]?.function.description, 'Looks up an account; admin key [REDACTED:apiKey]');
    assert.deepEqual(published.tools[0]?.function.parameters.properties.contact.enum, ['[REDACTED:email]']);
    assert.deepEqual(JSON.parse(published.messages[1]?.tool_calls?.[0]?.function.arguments ?? ''), { card: '[REDACTED:card]' });
    assert.equal(published.messages[2]?.content, 'holder phone [REDACTED:phone]');
    assert.equal(published.messages[3]?.content, 'Look it up again.', 'text without a secret is untouched');
    const answer = only(responses, 'req-private-fields', 'stable response topic');
    const toolCall = answer.response?.choices[0]?.toolCalls[0];
    assert.equal(toolCall?.function.name, 'lookup_account');
    assert.deepEqual(JSON.parse(toolCall?.function.arguments ?? ''), { contact: '[REDACTED:email]' }, 'the answer\'s tool-call arguments are redacted and still JSON');
    assert.equal(only(requests, 'req-private-fields', 'request topic').headers['user-agent'], 'bot ([REDACTED:email])');
  });

  it('publishes two requests that carry the same x-request-id as two events under fresh ids, recording the client id', async (t) => {
    const upstream = await startRecordingUpstream(t);
    const { scope, url } = await startGateway(t, upstream.url, { gateway: { requestIds: 'generate' } });
    const first = await chat(url, chatBody('first of two with one id'), { 'x-request-id': 'client-id-1' });
    const second = await chat(url, chatBody('second of two with one id'), { 'x-request-id': 'client-id-1' });
    const without = await chat(url, chatBody('no id at all'));
    for (const reply of [first, second]) {
      assert.equal(reply.status, 200);
      assert.equal(reply.headers['x-request-id'], 'client-id-1', 'the client gets its own id back');
      assert.match(String(reply.headers['x-shadow-request-id']), UUID, 'and the id its events are published under');
    }
    const ids = [first, second, without].map((reply) => String(reply.headers['x-shadow-request-id']));
    assert.equal(new Set(ids).size, 3, 'every request has its own id');
    assert.equal(without.headers['x-request-id'], ids[2], 'without a client id the generated one is echoed');
    assert.deepEqual(upstream.requestIds(), ['client-id-1', 'client-id-1', ids[2]], 'the stable model sees the client id, as without the gateway');

    await waitForPublished(url, 6);
    const { requests, responses } = await publishedEvents(scope);
    for (const [index, id] of ids.entries()) {
      assert.equal(only(requests, id, 'request topic').requestId, id);
      assert.equal(only(responses, id, 'stable response topic').requestId, id);
      assert.equal(only(requests, id, 'request topic').headers['x-request-id'], index < 2 ? 'client-id-1' : undefined, 'the client id is recorded as a header');
    }
    assert.equal(requests.length, 3);
    assert.equal(responses.length, 3, 'neither answer replaced the other');
  });

  it('adopts a well-formed client id only once when requestIds is client, and never a malformed one', async (t) => {
    const stableUrl = await startSim(t);
    const { scope, url } = await startGateway(t, stableUrl, { gateway: { requestIds: 'client' } });
    const adopted = await chat(url, chatBody('adopted'), { 'x-request-id': 'client-unique-1' });
    const reused = await chat(url, chatBody('reused'), { 'x-request-id': 'client-unique-1' });
    const malformed = await chat(url, chatBody('malformed'), { 'x-request-id': 'tenant:42/request 7' });
    assert.equal(adopted.headers['x-shadow-request-id'], 'client-unique-1');
    assert.match(String(reused.headers['x-shadow-request-id']), UUID, 'a reused id is not adopted twice');
    assert.match(String(malformed.headers['x-shadow-request-id']), UUID, 'an id with characters a key must not carry is not adopted');
    await waitForPublished(url, 6);
    const { requests } = await publishedEvents(scope);
    assert.equal(new Set(requests.map((entry) => entry.key)).size, 3);
    assert.equal(only(requests, String(reused.headers['x-shadow-request-id']), 'request topic').headers['x-request-id'], 'client-unique-1');
  });

  it('relays pass-through routes without shadowing them', async (t) => {
    const stableUrl = await startSim(t);
    const { scope, url } = await startGateway(t, stableUrl);
    const direct = await send(stableUrl, '/v1/models', { method: 'GET' });
    const relayed = await send(url, '/v1/models', { method: 'GET' });
    assert.equal(relayed.status, direct.status);
    assert.equal(relayed.text, direct.text);
    await chat(url, chatBody('a shadowed one'), { 'x-request-id': 'req-after-models' });
    await waitForPublished(url, 2);
    const { requests } = await publishedEvents(scope);
    assert.deepEqual(requests.map((entry) => entry.event.requestId), ['req-after-models'], 'only the chat completion was published');
    assert.equal(metricValue(await scrape(url), 'shadow_gateway_pass_through_total', { route: '/v1/models' }), 1);
  });

  it('relays a POST to /v1/embeddings body for body both ways and publishes nothing for it', async (t) => {
    const answer = Buffer.from(JSON.stringify({ object: 'list', data: [{ object: 'embedding', index: 0, embedding: [0.125, -0.5, 0.75] }], model: 'embed-1', usage: { prompt_tokens: 3, total_tokens: 3 } }));
    const upstream = await startScriptedUpstream(t, () => ({ status: 200, headers: { 'content-type': 'application/json', 'content-length': String(answer.length) }, parts: [answer] }));
    const { scope, url } = await startGateway(t, upstream.url);
    // Big enough to arrive in several chunks; the relay streams it rather than reading it whole.
    const body = JSON.stringify({ model: 'embed-1', input: ['jane@example.com', 'x'.repeat(200_000)] });
    const reply = await send(url, '/v1/embeddings', { body, headers: { authorization: 'Bearer user-key' } });
    assert.equal(reply.status, 200);
    assert.equal(reply.text, answer.toString('utf8'), 'the client gets the upstream answer as it was sent');
    assert.equal(reply.headers['content-type'], 'application/json');
    const [received] = upstream.received();
    assert.equal(upstream.received().length, 1);
    assert.equal(received?.method, 'POST');
    assert.equal(received?.path, '/v1/embeddings');
    assert.equal(received?.body.toString('utf8'), body, 'the upstream gets the request body as the client sent it');
    assert.equal(received?.headers.authorization, 'Bearer user-key', "the caller's own credentials go through when the stable endpoint has no key of its own");

    await chat(url, chatBody('a shadowed one after the embeddings'), { 'x-request-id': 'req-after-embeddings' });
    await waitForPublished(url, 2);
    assert.deepEqual((await publishedEvents(scope)).requests.map((entry) => entry.event.requestId), ['req-after-embeddings'], 'the embeddings request was not published');
    assert.equal(metricValue(await scrape(url), 'shadow_gateway_pass_through_total', { route: '/v1/embeddings' }), 1);
  });

  it('relays a streamed /v1/completions answer byte for byte as it arrives', async (t) => {
    const event = (text: string, finish: string | null = null) => `data: {"id":"cmpl-1","object":"text_completion","created":1,"model":"m","choices":[{"index":0,"text":${JSON.stringify(text)},"finish_reason":${JSON.stringify(finish)}}]}\n\n`;
    const full = Buffer.from([event('Once'), ': ping\n\n', event(' upon a tïme'), event('', 'length'), 'data: [DONE]\n\n'].join(''));
    const cuts = [7, full.indexOf(': ping') + 3, full.indexOf('ï') + 1, full.length - 5];
    const parts = [0, ...cuts].map((start, index) => full.subarray(start, cuts[index] ?? full.length));
    const upstream = await startScriptedUpstream(t, () => ({ status: 200, headers: { 'content-type': 'text/event-stream' }, parts }));
    const { url } = await startGateway(t, upstream.url);
    const response = await request(`${url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'm', prompt: 'Once', stream: true }) });
    assert.equal(response.statusCode, 200);
    assert.equal(response.headers['content-type'], 'text/event-stream');
    const received: Buffer[] = [];
    let seen = 0;
    for await (const chunk of response.body) {
      received.push(chunk as Buffer);
      seen += (chunk as Buffer).length;
      upstream.clientSaw(seen);
    }
    assert.deepEqual(upstream.late(), [], 'each part reached the client before the upstream sent the next');
    assert.ok(Buffer.concat(received).equals(full), 'the client received exactly the bytes the upstream sent');
    assert.equal(metricValue(await scrape(url), 'shadow_gateway_pass_through_total', { route: '/v1/completions' }), 1);
    assert.equal(metricValue(await scrape(url), 'shadow_gateway_publish_sent_total'), 0);
  });

  it('refuses at start a configuration that asks to shadow a route the event contract cannot carry', () => {
    const stable = { name: 'stable', baseUrl: 'http://127.0.0.1:8000' };
    const completions = ShadowConfigSchema.safeParse({ gateway: { stable, sampling: { routes: ['/v1/chat/completions', '/v1/completions'] } } });
    assert.equal(completions.success, false);
    assert.deepEqual(completions.error?.issues.map((issue) => issue.path.join('.')), ['gateway.sampling.routes.1']);
    assert.match(completions.error?.issues[0]?.message ?? '', /only \/v1\/chat\/completions can be shadowed: events carry chat-completions bodies/);
    const chatPassThrough = ShadowConfigSchema.safeParse({ gateway: { stable, passThrough: ['/v1/models', '/v1/chat/completions'] } });
    assert.deepEqual(chatPassThrough.error?.issues.map((issue) => issue.path.join('.')), ['gateway.passThrough.1']);
    assert.equal(ShadowConfigSchema.safeParse({ gateway: { stable, sampling: { routes: [] } } }).success, true, 'shadowing nothing is allowed');
  });

  it('changes the sampling rate at runtime through the loopback admin endpoint, and honours the opt-out header', async (t) => {
    const stableUrl = await startSim(t);
    const { scope, url, gateway } = await startGateway(t, stableUrl, { gateway: { admin: { port: 0 } } });
    const adminUrl = gateway.adminUrl ?? '';
    const set = await request(`${adminUrl}/admin/sampling`, { method: 'PUT', body: JSON.stringify({ rate: 0 }), headers: { 'content-type': 'application/json' } });
    assert.equal(set.statusCode, 200);
    assert.deepEqual(await set.body.json(), { rate: 0 });
    assert.equal(gateway.samplingRate, 0);
    assert.equal((await chat(url, chatBody('not sampled'), { 'x-request-id': 'req-rate-0' })).status, 200);
    gateway.setSamplingRate(1);
    assert.equal((await chat(url, chatBody('opted out'), { 'x-request-id': 'req-opt-out', 'x-shadow-opt-out': '1' })).status, 200);
    assert.equal((await chat(url, chatBody('sampled'), { 'x-request-id': 'req-rate-1' })).status, 200);
    await waitForPublished(url, 2);
    const { requests } = await publishedEvents(scope);
    assert.deepEqual(requests.map((entry) => entry.event.requestId), ['req-rate-1']);
    const metrics = await scrape(url);
    assert.equal(metricValue(metrics, 'shadow_gateway_not_shadowed_total', { reason: 'sampled_out' }), 1);
    assert.equal(metricValue(metrics, 'shadow_gateway_not_shadowed_total', { reason: 'opt_out' }), 1);
    const bad = await request(`${adminUrl}/admin/sampling`, { method: 'PUT', body: '{"rate": 2}' });
    assert.equal(bad.statusCode, 400);
    assert.equal(((await bad.body.json()) as { error: { param: string } }).error.param, 'rate');
  });

  it('serves the admin endpoint only on its own loopback listener, never on the public one, and refuses a non-loopback admin address', async (t) => {
    const stableUrl = await startSim(t);
    const { gateway, url } = await startGateway(t, stableUrl, { gateway: { listen: { host: '0.0.0.0', port: 0 }, admin: { port: 0 } } });
    const adminUrl = new URL(gateway.adminUrl ?? '');
    assert.equal(adminUrl.hostname, '127.0.0.1', 'bound to loopback');
    assert.equal((await send(adminUrl.href.replace(/\/$/, ''), '/admin/sampling', { method: 'GET' })).status, 200);
    const publicPort = new URL(url).port;
    const onPublic = await send(`http://127.0.0.1:${publicPort}`, '/admin/sampling', { method: 'PUT', body: '{"rate": 0}' });
    assert.equal(onPublic.status, 404, 'the public listener has no admin route, even for a loopback caller');
    assert.equal(gateway.samplingRate, 1);
    assert.equal((await send(adminUrl.origin, '/v1/chat/completions', { body: JSON.stringify(chatBody('not here')) })).status, 404, 'the admin listener proxies nothing');

    // From this machine's own non-loopback address (when it has one), the admin port is closed.
    const external = Object.values(networkInterfaces())
      .flat()
      .find((entry) => entry !== undefined && entry.family === 'IPv4' && !entry.internal);
    if (external === undefined) t.diagnostic('no non-loopback IPv4 interface: the refusal from outside is not exercised');
    else {
      const fromOutside = await request(`http://${external.address}:${adminUrl.port}/admin/sampling`).then(
        (response) => `answered ${response.statusCode}`,
        (error: unknown) => (error as { code?: string }).code ?? String(error),
      );
      assert.equal(fromOutside, 'ECONNREFUSED', `the admin port on ${external.address}`);
      assert.equal((await request(`http://${external.address}:${publicPort}/healthz`)).statusCode, 200, 'while the public listener answers there');
    }

    const refused = ShadowConfigSchema.safeParse({ gateway: { stable: { name: 'stable', baseUrl: stableUrl }, admin: { host: '0.0.0.0', port: 9100 } } });
    assert.equal(refused.success, false);
    assert.deepEqual(refused.error?.issues.map((issue) => issue.path.join('.')), ['gateway.admin.host']);
    assert.match(refused.error?.issues[0]?.message ?? '', /loopback/);
  });

  it('answers 504 in the OpenAI error shape when the stable model does not answer in time, and publishes the timeout', async (t) => {
    const upstream = await startHeldUpstream(t);
    const firstToken = await startGateway(t, upstream.url, { gateway: { stable: { name: 'stable', baseUrl: upstream.url, timeouts: { firstTokenMs: 300 } } } });
    const total = await startGateway(t, upstream.url, { gateway: { stable: { name: 'stable', baseUrl: upstream.url, timeouts: { firstTokenMs: 10_000, totalMs: 300 } } } });
    for (const [running, requestId, code] of [
      [firstToken, 'req-first-token-timeout', 'first_token_timeout'],
      [total, 'req-total-timeout', 'total_timeout'],
    ] as const) {
      const started = performance.now();
      const reply = await chat(running.url, chatBody('Nobody answers.'), { 'x-request-id': requestId });
      const tookMs = performance.now() - started;
      assert.equal(reply.status, 504);
      assert.equal(reply.headers['content-type'], 'application/json');
      assert.equal(reply.text, openAiErrorText('the model endpoint did not answer in time', 'server_error', 'upstream_timeout'));
      assert.equal(reply.headers['x-request-id'], requestId);
      assert.ok(tookMs >= 300 && tookMs < 5_000, `answered after the 300 ms timeout (${Math.round(tookMs)} ms)`);
      await waitForPublished(running.url, 2);
      const event = only((await publishedEvents(running.scope)).responses, requestId, 'stable response topic');
      assert.equal(event.outcome, 'error');
      assert.equal(event.status, null);
      assert.equal(event.error?.code, code);
      assert.equal(event.error?.retryable, true);
    }
  });

  it('captures the tool calls of a non-streamed and of a streamed answer into the stable ResponseEvent', async (t) => {
    const stableUrl = await startSim(t);
    const { scope, url } = await startGateway(t, stableUrl);
    const tools = [
      {
        type: 'function',
        function: { name: 'get_weather', description: 'Weather for a city', parameters: { type: 'object', properties: { city: { type: 'string', enum: ['Paris', 'Oslo'] }, days: { type: 'integer' } }, required: ['city'] } },
      },
    ];
    const whole = await chat(url, chatBody('What is the weather?', { tools, tool_choice: 'required' }), { 'x-request-id': 'req-tools-whole' });
    const streamed = await chat(url, chatBody('What is the weather?', { tools, tool_choice: 'required', stream: true }), { 'x-request-id': 'req-tools-stream' });
    assert.equal(whole.status, 200);
    assert.equal(streamed.status, 200);

    const message = (JSON.parse(whole.text) as { choices: Array<{ message: { tool_calls: Array<{ id: string; type: string; function: { name: string; arguments: string } }> }; finish_reason: string }> }).choices[0];
    assert.ok(message && message.message.tool_calls.length === 1, 'the sim answered with a tool call');
    const fromStream = toolCallsOf(streamed.text);
    assert.equal(fromStream.calls.length, 1, 'the streamed answer carries a tool call');

    await waitForPublished(url, 4);
    const { responses } = await publishedEvents(scope);
    const wholeEvent = only(responses, 'req-tools-whole', 'stable response topic');
    assert.deepEqual(wholeEvent.response?.choices, [{ index: 0, content: null, toolCalls: message.message.tool_calls, finishReason: message.finish_reason }]);
    assert.equal(wholeEvent.streamed, false);
    const streamEvent = only(responses, 'req-tools-stream', 'stable response topic');
    assert.deepEqual(streamEvent.response?.choices[0]?.toolCalls, fromStream.calls);
    assert.equal(streamEvent.response?.choices[0]?.finishReason, fromStream.finishReason);
    assert.equal(streamEvent.streamed, true);
    assert.notEqual(streamEvent.timing.ttftMs, null, 'a tool-call delta is the first token');
    for (const event of [wholeEvent, streamEvent]) {
      const args = JSON.parse(event.response?.choices[0]?.toolCalls[0]?.function.arguments ?? '') as { city: string };
      assert.ok(['Paris', 'Oslo'].includes(args.city), `arguments ${JSON.stringify(args)} parse as the call's JSON`);
    }
  });

  it('counts an event over maxEventBytes as too_large and does not publish it, while the user gets the answer', async (t) => {
    const stableUrl = await startSim(t);
    const { scope, url } = await startGateway(t, stableUrl, { gateway: { maxEventBytes: 2048 } });
    const reply = await chat(url, chatBody('x '.repeat(3000)), { 'x-request-id': 'req-huge' });
    assert.equal(reply.status, 200);
    await chat(url, chatBody('small'), { 'x-request-id': 'req-small' });
    await waitForPublished(url, 2);
    const { requests } = await publishedEvents(scope);
    assert.deepEqual(requests.map((entry) => entry.event.requestId), ['req-small']);
    assert.equal(metricValue(await scrape(url), 'shadow_gateway_unpublishable_total', { reason: 'too_large' }), 1);
  });
});

interface ScriptedAnswer {
  status: number;
  headers: Record<string, string>;
  parts: Buffer[];
}

interface ReceivedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

interface ScriptedUpstream {
  url: string;
  /** The client has received this many bytes of the answer in progress. */
  clientSaw: (bytes: number) => void;
  /** Parts after which the upstream gave up waiting for the client (5 s) and went on. */
  late: () => number[];
  received: () => ReceivedRequest[];
}

/**
 * A model endpoint that answers with exactly the given parts, one write each, and sends a part
 * only once the client reported receiving everything before it: a relay that buffers shows up
 * as a late part (the upstream waits 5 s, then goes on).
 */
async function startScriptedUpstream(t: TestContext, answer: (request: ReceivedRequest) => ScriptedAnswer): Promise<ScriptedUpstream> {
  const received: ReceivedRequest[] = [];
  const late: number[] = [];
  let saw = 0;
  let waiter: { target: number; resolve: () => void } | undefined;
  const waitForClient = (target: number) =>
    new Promise<boolean>((resolve) => {
      if (saw >= target) return resolve(true);
      const timer = setTimeout(() => resolve(false), 5_000);
      waiter = {
        target,
        resolve: () => {
          clearTimeout(timer);
          resolve(true);
        },
      };
    });
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const entry = { method: req.method ?? 'GET', path: req.url ?? '/', headers: req.headers, body: Buffer.concat(chunks) };
      received.push(entry);
      const { status, headers, parts } = answer(entry);
      saw = 0;
      void (async () => {
        res.writeHead(status, headers);
        let sent = 0;
        for (const [index, part] of parts.entries()) {
          res.write(part);
          sent += part.length;
          if (index < parts.length - 1 && !(await waitForClient(sent))) late.push(index);
        }
        res.end();
      })();
    });
  });
  const port = await listenOnLoopback(t, server);
  return {
    url: `http://127.0.0.1:${port}`,
    clientSaw: (bytes) => {
      saw = bytes;
      if (waiter !== undefined && saw >= waiter.target) {
        const { resolve } = waiter;
        waiter = undefined;
        resolve();
      }
    },
    late: () => [...late],
    received: () => [...received],
  };
}

/** The tool calls and finish reason a client assembles from a streamed answer. */
function toolCallsOf(text: string): { calls: Array<{ id: string; type: string; function: { name: string; arguments: string } }>; finishReason: string | null } {
  const calls: Array<{ id: string; type: string; function: { name: string; arguments: string } }> = [];
  let finishReason: string | null = null;
  for (const line of text.split('\n')) {
    if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
    const chunk = JSON.parse(line.slice('data: '.length)) as {
      choices: Array<{ delta: { tool_calls?: Array<{ index: number; id?: string; type?: string; function?: { name?: string; arguments?: string } }> }; finish_reason: string | null }>;
    };
    for (const choice of chunk.choices) {
      finishReason = choice.finish_reason ?? finishReason;
      for (const delta of choice.delta.tool_calls ?? []) {
        const call = (calls[delta.index] ??= { id: '', type: 'function', function: { name: '', arguments: '' } });
        if (delta.id !== undefined) call.id = delta.id;
        if (delta.type !== undefined) call.type = delta.type;
        call.function.name += delta.function?.name ?? '';
        call.function.arguments += delta.function?.arguments ?? '';
      }
    }
  }
  return { calls, finishReason };
}

interface RecordingUpstream {
  url: string;
  /** The x-request-id of every request the upstream received, in order. */
  requestIds: () => Array<string | undefined>;
}

/** A stable model that answers at once and records the x-request-id it was sent. */
async function startRecordingUpstream(t: TestContext): Promise<RecordingUpstream> {
  const seen: Array<string | undefined> = [];
  const answer = JSON.stringify({ id: 'chatcmpl-rec', object: 'chat.completion', model: 'sim-model', choices: [{ index: 0, message: { role: 'assistant', content: 'noted' }, finish_reason: 'stop' }] });
  const server = createServer((req, res) => {
    const id = req.headers['x-request-id'];
    seen.push(Array.isArray(id) ? id[0] : id);
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(answer));
  });
  const port = await listenOnLoopback(t, server);
  return { url: `http://127.0.0.1:${port}`, requestIds: () => [...seen] };
}

interface HeldUpstream {
  url: string;
  /** Requests the upstream holds unanswered right now. */
  inFlight: () => number;
  /** The most requests it held at once. */
  peak: () => number;
  /** Answers every held request, and every later one at once. */
  release: () => void;
}

/** A stable model that holds every call until released: measures how many calls the gateway has in flight. */
async function startHeldUpstream(t: TestContext): Promise<HeldUpstream> {
  const held: Array<() => void> = [];
  let inFlight = 0;
  let peak = 0;
  let released = false;
  const answer = JSON.stringify({ id: 'chatcmpl-held', object: 'chat.completion', model: 'sim-model', choices: [{ index: 0, message: { role: 'assistant', content: 'done' }, finish_reason: 'stop' }] });
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const respond = () => {
        inFlight--;
        res.writeHead(200, { 'content-type': 'application/json' }).end(answer);
      };
      inFlight++;
      peak = Math.max(peak, inFlight);
      if (released) respond();
      else held.push(respond);
    });
  });
  server.keepAliveTimeout = 60_000;
  const port = await listenOnLoopback(t, server);
  return {
    url: `http://127.0.0.1:${port}`,
    inFlight: () => inFlight,
    peak: () => peak,
    release: () => {
      released = true;
      for (const respond of held.splice(0)) respond();
    },
  };
}

describe('the gateway on the live path', () => {
  it('holds more than 128 calls to the stable model in flight at once by default', async (t) => {
    const upstream = await startHeldUpstream(t);
    const { url } = await startGateway(t, upstream.url);
    const calls = 300;
    const replies = Array.from({ length: calls }, (_, index) => chat(url, chatBody(`slow call ${index}`)));
    try {
      // With a pool capped below 300 connections the upstream never sees them all and this times out.
      await waitFor(() => upstream.inFlight() === calls, { timeoutMs: 20_000, what: `${calls} calls in flight at the stable model at once` });
    } finally {
      upstream.release();
    }
    assert.deepEqual(
      (await Promise.all(replies)).map((reply) => reply.status),
      Array.from({ length: calls }, () => 200),
    );
    assert.equal(upstream.peak(), calls);
  });

  it('keeps at most gateway.upstream.connections calls in flight to the stable model when it is set', async (t) => {
    const upstream = await startHeldUpstream(t);
    const connections = 7;
    const { url } = await startGateway(t, upstream.url, { gateway: { upstream: { connections } } });
    const replies = Array.from({ length: 3 * connections }, (_, index) => chat(url, chatBody(`capped call ${index}`)));
    try {
      await waitFor(() => upstream.inFlight() >= connections, { timeoutMs: 20_000, what: `${connections} calls in flight at the stable model` });
    } finally {
      upstream.release();
    }
    assert.equal((await Promise.all(replies)).filter((reply) => reply.status === 200).length, 3 * connections);
    assert.equal(upstream.peak(), connections, 'the pool never opened more connections than configured');
  });

  it('relays one stream byte for byte as it arrives: odd chunk boundaries, split characters, comments and CRLF', async (t) => {
    const event = (delta: Record<string, unknown>, finish: string | null = null) =>
      `data: {"id":"chatcmpl-bytes","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":${JSON.stringify(delta)},"finish_reason":${JSON.stringify(finish)}}]}\r\n\r\n`;
    const full = Buffer.from(
      [
        ': connected\r\n\r\n',
        event({ role: 'assistant', content: '' }),
        event({ content: 'café' }),
        ': keep-alive\r\n\r\n',
        event({ content: ' ünï ✓' }),
        event({}, 'stop'),
        'data: {"id":"chatcmpl-bytes","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8}}\r\n\r\n',
        'data: [DONE]\r\n\r\n',
      ].join(''),
    );
    // Cuts inside a JSON object, inside "é" (2 bytes) and inside "✓" (3 bytes), and right after a CR.
    const cuts = [5, 40, full.indexOf('é') + 1, full.indexOf(': keep') - 3, full.indexOf('✓') + 1, full.indexOf('✓') + 2, full.lastIndexOf('\r') - 2, full.length - 3];
    const parts = [0, ...cuts].map((start, index) => full.subarray(start, cuts[index] ?? full.length));
    assert.deepEqual(Buffer.concat(parts), full);
    const upstream = await startScriptedUpstream(t, () => ({ status: 200, headers: { 'content-type': 'text/event-stream' }, parts }));
    const { scope, url } = await startGateway(t, upstream.url);

    const response = await request(`${url}${ROUTE}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'req-bytes' },
      body: JSON.stringify(chatBody('bytes', { stream: true, stream_options: { include_usage: true } })),
    });
    assert.equal(response.statusCode, 200);
    const received: Buffer[] = [];
    let seen = 0;
    for await (const chunk of response.body) {
      received.push(chunk as Buffer);
      seen += (chunk as Buffer).length;
      upstream.clientSaw(seen);
    }
    assert.deepEqual(upstream.late(), [], 'the upstream sent each part only after the client had received the one before: nothing is held back');
    assert.ok(Buffer.concat(received).equals(full), 'the client received exactly the bytes the upstream sent');

    await waitForPublished(url, 2);
    const published = only((await publishedEvents(scope)).responses, 'req-bytes', 'stable response topic');
    assert.equal(published.outcome, 'ok');
    assert.deepEqual(published.response?.choices, [{ index: 0, content: 'café ünï ✓', toolCalls: [], finishReason: 'stop' }], 'characters split across chunks are captured whole');
    assert.deepEqual(published.usage, { prompt: 5, completion: 3, total: 8, source: 'usage' });
  });

  it('relays the content-length of a whole answer and streams a streamed one chunked', async (t) => {
    const stableUrl = await startSim(t);
    const { url } = await startGateway(t, stableUrl);

    const whole = chatBody('How long is this answer?');
    const direct = await chat(stableUrl, whole);
    const viaGateway = await chat(url, whole);
    assert.equal(typeof direct.headers['content-length'], 'string', 'the sim sends a content-length');
    assert.equal(viaGateway.headers['content-length'], String(Buffer.byteLength(viaGateway.text)));
    assert.equal(viaGateway.headers['content-length'], direct.headers['content-length'], 'the same framing as the stable model');
    assert.equal(viaGateway.headers['transfer-encoding'], undefined);

    const streamed = await chat(url, chatBody('And a streamed one?', { stream: true }));
    assert.equal(streamed.status, 200);
    assert.equal(streamed.headers['content-length'], undefined);
    assert.equal(streamed.headers['transfer-encoding'], 'chunked');
  });
});

describe("the gateway's hand-off to the publisher thread", () => {
  it('bounds the exchanges handed to a starved publisher thread, drops the rest as handoff_full and never delays a user', async (t) => {
    const stableUrl = await startSim(t);
    const maxExchanges = 4;
    const { scope, url, gateway } = await startGateway(t, stableUrl, { gateway: { handoff: { maxExchanges } } });
    const requests = 12;
    const release = gateway.publisher.stall();
    let published: number;
    try {
      let deepest = 0;
      for (let index = 0; index < requests; index++) {
        const reply = await chat(url, chatBody(`while the publisher is starved ${index}`), { 'x-request-id': `req-starved-${index}` });
        assert.equal(reply.status, 200, `request ${index} succeeds while the publisher thread takes nothing in`);
        assert.ok(reply.text.includes('"finish_reason":"stop"'), 'and gets its whole answer');
        deepest = Math.max(deepest, gateway.publisher.inFlight.exchanges);
      }
      // Handed over after each answer, so the last ones may still be on their way to the bound.
      await waitFor(() => gateway.publisher.inFlight.exchanges === maxExchanges, { timeoutMs: 5_000, what: 'the hand-off to fill up' });
      assert.ok(deepest <= maxExchanges, `at most ${maxExchanges} exchanges held for the thread (saw ${deepest})`);
      // A scrape answers while the thread is starved: it waits a bounded time for the thread's report.
      const metrics = await scrape(url);
      assert.equal(metricValue(metrics, 'shadow_gateway_publish_dropped_total', { reason: 'handoff_full' }), 2 * (requests - maxExchanges), 'a request and a stable answer dropped per exchange that did not fit');
      assert.equal(metricValue(metrics, 'shadow_gateway_handoff_exchanges'), maxExchanges);
      assert.equal(metricValue(metrics, 'shadow_gateway_publish_sent_total'), 0, 'the starved thread published nothing');
      published = 2 * maxExchanges;
    } finally {
      release();
    }
    await waitForPublished(url, published);
    const { requests: events } = await publishedEvents(scope);
    assert.deepEqual(
      events.map((entry) => entry.event.requestId).sort(),
      Array.from({ length: maxExchanges }, (_, index) => `req-starved-${index}`).sort(),
      'the exchanges that fit were published once the thread ran again, and no other',
    );
    await waitFor(() => gateway.publisher.inFlight.exchanges === 0, { timeoutMs: 5_000, what: 'the thread to report taking them in' });
    assert.equal(gateway.publisher.inFlight.bytes, 0);
  });

  it('bounds the bytes handed to a starved publisher thread', async (t) => {
    const stableUrl = await startSim(t);
    const maxBytes = 100_000;
    const { url, gateway } = await startGateway(t, stableUrl, { gateway: { handoff: { maxBytes, maxCaptureBytes: 50_000 } } });
    const requests = 10;
    const release = gateway.publisher.stall();
    try {
      for (let index = 0; index < requests; index++) {
        // About 20 KB of request body each: five fit in 100 KB only without their answers.
        const reply = await chat(url, chatBody(`${'padding '.repeat(2_500)} ${index}`));
        assert.equal(reply.status, 200);
        assert.ok(gateway.publisher.inFlight.bytes <= maxBytes, `${gateway.publisher.inFlight.bytes} bytes held for the thread, at most ${maxBytes}`);
      }
      await waitFor(async () => (metricValue(await scrape(url), 'shadow_gateway_publish_dropped_total', { reason: 'handoff_full' }) ?? 0) > 0, {
        timeoutMs: 10_000,
        what: 'exchanges past the byte bound to be dropped',
      });
      const held = gateway.publisher.inFlight;
      assert.ok(held.exchanges >= 1 && held.exchanges < 5, `${held.exchanges} exchanges of ~20 KB fit in ${maxBytes} bytes`);
      const metrics = await scrape(url);
      assert.equal(metricValue(metrics, 'shadow_gateway_publish_dropped_total', { reason: 'handoff_full' }), 2 * (requests - held.exchanges));
      assert.ok((metricValue(metrics, 'shadow_gateway_handoff_bytes') ?? 0) <= maxBytes);
    } finally {
      release();
    }
  });

  it('keeps nothing of a request it samples out, deciding on the live path even while the publisher thread is starved', async (t) => {
    const stableUrl = await startSim(t);
    const { url, gateway } = await startGateway(t, stableUrl, { gateway: { sampling: { rate: 0 } } });
    const release = gateway.publisher.stall();
    try {
      for (let index = 0; index < 10; index++) assert.equal((await chat(url, chatBody(`sampled out ${index}`))).status, 200);
      assert.deepEqual(gateway.publisher.inFlight, { exchanges: 0, bytes: 0 }, 'nothing was handed to the thread');
      const metrics = await scrape(url);
      assert.equal(metricValue(metrics, 'shadow_gateway_not_shadowed_total', { reason: 'sampled_out' }), 10, 'counted by the live path, not by the starved thread');
      assert.equal(metricValue(metrics, 'shadow_gateway_publish_dropped_total'), undefined, 'a request sampled out is not a drop');
    } finally {
      release();
    }
  });

  it('stops keeping an exchange larger than handoff.maxCaptureBytes, counts it too_large and relays it whole', async (t) => {
    const stableUrl = await startSim(t, { profile: 'stable', overrides: { timeScale: 0.01 } });
    const { scope, url } = await startGateway(t, stableUrl, { gateway: { handoff: { maxCaptureBytes: 2_000 } } });
    const body = chatBody('A streamed answer longer than the capture limit.', { stream: true });

    const direct = await chat(stableUrl, body);
    assert.ok(Buffer.byteLength(direct.text) > 2_000, `the answer is ${Buffer.byteLength(direct.text)} bytes, over the limit`);
    const viaGateway = await chat(url, body, { 'x-request-id': 'req-long-stream' });
    assert.equal(viaGateway.status, 200);
    assert.equal(withoutPerResponseFields(viaGateway.text), withoutPerResponseFields(direct.text), 'the user gets the whole answer');
    const bigBody = await chat(url, chatBody('y '.repeat(2_000)), { 'x-request-id': 'req-big-body' });
    assert.equal(bigBody.status, 200, 'a request body over the limit is relayed too');

    await chat(url, chatBody('short'), { 'x-request-id': 'req-short' });
    await waitForPublished(url, 2);
    const metrics = await scrape(url);
    assert.equal(metricValue(metrics, 'shadow_gateway_unpublishable_total', { reason: 'too_large' }), 2);
    assert.deepEqual((await publishedEvents(scope)).requests.map((entry) => entry.event.requestId), ['req-short']);
  });

  it('drops what does not fit in buffer.maxBytes while Kafka is unreachable', async (t) => {
    const stableUrl = await startSim(t);
    const maxBytes = 20_000;
    const { gateway, url } = await startGateway(t, stableUrl, {
      gateway: { buffer: { maxEvents: 1_000, maxBytes } },
      env: { KAFKA_BROKERS: UNREACHABLE_KAFKA },
      flushDeadlineMs: 200,
      createTopics: false,
    });
    const requests = 20;
    for (let index = 0; index < requests; index++) {
      // About 3 KB of request body each, so a pair of events is over 6 KB: a few fit in 20 KB.
      assert.equal((await chat(url, chatBody(`${'pad '.repeat(750)} ${index}`))).status, 200);
    }
    const metrics = await scrape(url);
    const depth = metricValue(metrics, 'shadow_gateway_buffer_depth') ?? 0;
    const bytes = metricValue(metrics, 'shadow_gateway_buffer_bytes') ?? 0;
    assert.ok(depth >= 2 && depth < 2 * requests, `${depth} events buffered: some fit, not all`);
    assert.ok(bytes > 0 && bytes <= maxBytes, `${bytes} bytes buffered, at most ${maxBytes}`);
    assert.equal(metricValue(metrics, 'shadow_gateway_publish_dropped_total', { reason: 'buffer_full' }), 2 * requests - depth, 'every event not buffered is counted');
    assert.equal(gateway.bufferDepth, depth);
  });
});

interface GatewayProcess {
  url: string;
  child: ChildProcess;
  exitCode: Promise<number | null>;
  /** Rewrites the configuration file the process was started with (for SIGHUP). */
  writeConfig: (config: ShadowConfig) => Promise<void>;
  /** The pino records the process wrote to stdout so far. */
  logs: () => Array<Record<string, unknown>>;
}

/** `shadow-replay gateway --config FILE` as its own process, from source, logging at info. */
async function spawnGateway(t: TestContext, scope: TestScope, env: Record<string, string> = {}): Promise<GatewayProcess> {
  const gateway = scope.config.gateway;
  assert.ok(gateway, 'a gateway section');
  const file = join(tmpdir(), `${scope.id}.gateway.yaml`);
  const writeConfig = (config: ShadowConfig) => writeFile(file, stringify(config));
  await writeConfig(scope.config);
  t.after(() => rm(file, { force: true }));
  const script = `const { main } = await import('@shadow-replay/cli'); process.exitCode = await main(['gateway', '--config', ${JSON.stringify(file)}]);`;
  const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: ROOT,
    env: { ...process.env, ...scope.env, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4_096)));
  const exitCode = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const url = `http://127.0.0.1:${gateway.listen.port}`;
  await waitFor(async () => (await httpGet(`${url}/readyz`)).status === 200 || child.exitCode !== null, { timeoutMs: 60_000, what: 'the gateway process to be ready' });
  assert.equal(child.exitCode, null, `the gateway exited while starting: ${stderr}`);
  const logs = () =>
    stdout
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  return { url, child, exitCode, writeConfig, logs };
}

/** How a TCP connection attempt ends: `connected`, or the error code. */
function connectOutcome(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
}

function withRate(config: ShadowConfig, rate: number): ShadowConfig {
  const gateway = config.gateway;
  assert.ok(gateway);
  return { ...config, gateway: { ...gateway, sampling: { ...gateway.sampling, rate } } };
}

describe('the gateway as its own process', () => {
  it('applies a sampling rate changed in its configuration file on SIGHUP, and keeps the running one when the new file is invalid', async (t) => {
    const stableUrl = await startSim(t);
    const port = await freePort();
    const scope = testScope(t, () => ({ gateway: { listen: { port }, stable: { name: 'stable', baseUrl: stableUrl }, requestIds: 'client' } }));
    await ensureTopics(scope.kafka, [scope.config.kafka.topics.requests, scope.config.kafka.topics.stableResponses], 3);
    const gateway = await spawnGateway(t, scope);
    const pid = gateway.child.pid ?? 0;
    const rate = async () => metricValue(await scrape(gateway.url), 'shadow_gateway_sampling_rate');

    assert.equal((await chat(gateway.url, chatBody('before the reload'), { 'x-request-id': 'req-hup-before' })).status, 200);
    await gateway.writeConfig(withRate(scope.config, 0));
    process.kill(pid, 'SIGHUP');
    await waitFor(async () => (await rate()) === 0, { timeoutMs: 10_000, what: 'the reloaded rate 0 to apply' });
    for (const id of ['req-hup-off-1', 'req-hup-off-2']) assert.equal((await chat(gateway.url, chatBody(id), { 'x-request-id': id })).status, 200);
    assert.equal(metricValue(await scrape(gateway.url), 'shadow_gateway_not_shadowed_total', { reason: 'sampled_out' }), 2);

    await writeFile(join(tmpdir(), `${scope.id}.gateway.yaml`), stringify(withRate(scope.config, 2)));
    process.kill(pid, 'SIGHUP');
    await waitFor(() => gateway.logs().some((record) => record.msg === 'config reload failed; keeping the running settings'), { timeoutMs: 10_000, what: 'the invalid file to be refused' });
    assert.equal(gateway.child.exitCode, null, 'an invalid file does not stop the gateway');
    assert.equal(await rate(), 0, 'the running rate stays');

    await gateway.writeConfig(withRate(scope.config, 1));
    process.kill(pid, 'SIGHUP');
    await waitFor(async () => (await rate()) === 1, { timeoutMs: 10_000, what: 'the reloaded rate 1 to apply' });
    assert.equal((await chat(gateway.url, chatBody('after the second reload'), { 'x-request-id': 'req-hup-back' })).status, 200);
    await waitForPublished(gateway.url, 4);
    const { requests } = await publishedEvents(scope);
    assert.deepEqual(requests.map((entry) => entry.event.requestId).sort(), ['req-hup-back', 'req-hup-before']);
    assert.deepEqual(
      gateway.logs().filter((record) => record.msg === 'sampling rate changed').map((record) => [record.previous, record.rate]),
      [
        [1, 0],
        [0, 1],
      ],
    );

    gateway.child.kill('SIGTERM');
    assert.equal(await gateway.exitCode, 0);
  });

  it('on SIGTERM refuses new connections, finishes the requests in flight, publishes their events and reports what it dropped', async (t) => {
    const upstream = await startHeldUpstream(t);
    const port = await freePort();
    const scope = testScope(t, () => ({ gateway: { listen: { port }, stable: { name: 'stable', baseUrl: upstream.url }, requestIds: 'client', flushDeadlineMs: 3_000 } }));
    await ensureTopics(scope.kafka, [scope.config.kafka.topics.requests, scope.config.kafka.topics.stableResponses], 3);
    const gateway = await spawnGateway(t, scope);

    const inFlight = 5;
    const answered: number[] = [];
    const replies = Array.from({ length: inFlight }, (_, index) =>
      chat(gateway.url, chatBody(`in flight at SIGTERM ${index}`), { 'x-request-id': `req-term-${index}` }).then((reply) => {
        answered.push(index);
        return reply;
      }),
    );
    try {
      await waitFor(() => upstream.inFlight() === inFlight, { timeoutMs: 20_000, what: `${inFlight} calls held at the stable model` });
      gateway.child.kill('SIGTERM');
      await waitFor(async () => (await connectOutcome(port)) === 'ECONNREFUSED', { timeoutMs: 10_000, what: 'new connections to be refused' });
      assert.equal(gateway.child.exitCode, null, 'the gateway waits for the requests in flight');
      assert.deepEqual(answered, [], 'none of them was cut short');
    } finally {
      upstream.release();
    }
    assert.deepEqual(
      (await Promise.all(replies)).map((reply) => reply.status),
      Array.from({ length: inFlight }, () => 200),
      'every request in flight at SIGTERM is answered',
    );
    const releasedAt = performance.now();
    assert.equal(await gateway.exitCode, 0);
    const exitMs = performance.now() - releasedAt;
    // Within the flush deadline (3 s) and some slack; a client's idle keep-alive connection once held it 10 s.
    assert.ok(exitMs < 5_000, `exited ${Math.round(exitMs)} ms after the last answer`);

    const { requests, responses } = await publishedEvents(scope);
    const expected = Array.from({ length: inFlight }, (_, index) => `req-term-${index}`).sort();
    assert.deepEqual(requests.map((entry) => entry.event.requestId).sort(), expected, 'their events were flushed before the exit');
    assert.deepEqual(responses.map((entry) => entry.event.requestId).sort(), expected);
    const report = gateway.logs().find((record) => record.msg === 'publish totals at shutdown');
    assert.ok(report, 'the gateway reports what it published and dropped');
    assert.equal(report.sent, 2 * inFlight);
    assert.deepEqual(report.dropped, {});
  });

  it('on SIGTERM with Kafka unreachable gives up the flush at its deadline, exits 0 and reports the events it dropped', async (t) => {
    const stableUrl = await startSim(t);
    const port = await freePort();
    const flushDeadlineMs = 500;
    const scope = testScope(t, () => ({ gateway: { listen: { port }, stable: { name: 'stable', baseUrl: stableUrl }, flushDeadlineMs } }));
    const gateway = await spawnGateway(t, scope, { KAFKA_BROKERS: UNREACHABLE_KAFKA });
    const requests = 3;
    for (let index = 0; index < requests; index++) assert.equal((await chat(gateway.url, chatBody(`kafka is down ${index}`))).status, 200);
    await waitFor(async () => metricValue(await scrape(gateway.url), 'shadow_gateway_buffer_depth') === 2 * requests, { timeoutMs: 10_000, what: 'the events to wait in the buffer' });

    const stoppedAt = performance.now();
    gateway.child.kill('SIGTERM');
    assert.equal(await gateway.exitCode, 0);
    const tookMs = performance.now() - stoppedAt;
    // The flush deadline, the thread's 2 s grace and process start-up noise; kafkajs alone would retry for ~30 s.
    assert.ok(tookMs < flushDeadlineMs + 2_000 + 3_000, `exited ${Math.round(tookMs)} ms after SIGTERM`);
    const report = gateway.logs().find((record) => record.msg === 'publish totals at shutdown');
    assert.ok(report, 'the gateway reports what it dropped');
    assert.equal(report.sent, 0);
    assert.deepEqual(report.dropped, { shutdown: 2 * requests });
  });
});

/** Listens on a free loopback port until the test ends (open connections cut, so close never waits on keep-alive). */
async function listenOnLoopback(t: TestContext, server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return (server.address() as AddressInfo).port;
}
