import { request } from 'undici';

const TOPICS = ['consistent hashing', 'Kafka consumer groups', 'GPU batching', 'tail latency', 'idempotent writes', 'Redis Lua scripts', 'bootstrap intervals', 'prompt caching'];
const ASKS = ['Explain', 'Summarise', 'Give one pitfall of', 'Compare two approaches to', 'Write a haiku about'];

/** The n-th prompt of the built-in traffic: varied but reproducible. */
export function samplePrompt(index: number): string {
  const topic = TOPICS[index % TOPICS.length] ?? 'queues';
  const ask = ASKS[Math.floor(index / TOPICS.length) % ASKS.length] ?? 'Explain';
  return `${ask} ${topic} (request ${index}).`;
}

export interface TrafficResult {
  sent: number;
  ok: number;
  failed: number;
  requestIds: string[];
}

/**
 * Sends `count` chat completions through the gateway with bounded concurrency, half of them
 * streamed, and reports progress as it goes.
 */
export async function sendTraffic(options: { gatewayUrl: string; count: number; concurrency: number; runId: string; onProgress?: (done: number) => void }): Promise<TrafficResult> {
  const result: TrafficResult = { sent: 0, ok: 0, failed: 0, requestIds: [] };
  let next = 0;
  const worker = async () => {
    while (next < options.count) {
      const index = next++;
      const requestId = `${options.runId}-${index}`;
      result.requestIds.push(requestId);
      result.sent++;
      try {
        const response = await request(`${options.gatewayUrl}/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-request-id': requestId, 'x-tenant-id': `tenant-${index % 3}` },
          body: JSON.stringify({ model: 'sim', stream: index % 2 === 0, messages: [{ role: 'user', content: samplePrompt(index) }] }),
        });
        await response.body.text();
        if (response.statusCode < 400) result.ok++;
        else result.failed++;
      } catch {
        result.failed++;
      }
      options.onProgress?.(result.ok + result.failed);
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  return result;
}
