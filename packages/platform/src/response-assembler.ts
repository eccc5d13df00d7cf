import { performance } from 'node:perf_hooks';
import { StringDecoder } from 'node:string_decoder';
import type { AssembledResponse, ChatRequest, ItlSummary, Timing, ToolCall, Usage } from '@shadow-replay/contracts';

interface ChoiceState {
  content: string;
  sawContent: boolean;
  toolCalls: Map<number, { id?: string; type: string; name: string; arguments: string }>;
  finishReason: string | null;
}

export interface AssembledResult {
  response: AssembledResponse | null;
  usage: Usage | null;
  timing: Timing;
  /** The stream ended properly (`[DONE]` or a finish reason), or the JSON body parsed. */
  complete: boolean;
  /** A data line or body was not JSON. */
  malformed: boolean;
}

/**
 * Rebuilds an OpenAI chat completion from SSE chunks (or a JSON body) as they arrive, and
 * times it by DESIGN §4 on the monotonic clock: TTFT at the first chunk with content,
 * reasoning or a tool-call delta; ITL between content chunks; E2E at the end.
 */
export class ResponseAssembler {
  readonly #sentAtEpoch: number;
  readonly #sentAt: number;
  readonly #request: ChatRequest | undefined;
  readonly #choices = new Map<number, ChoiceState>();
  #id: string | undefined;
  #model: string | undefined;
  #usage: Usage | null = null;
  #pending = '';
  // A network chunk may end inside a multi-byte character: bytes are decoded across chunks.
  readonly #decoder = new StringDecoder('utf8');
  #firstContentAt: number | null = null;
  #contentTimes: number[] = [];
  #endAt: number | null = null;
  #done = false;
  #malformed = false;

  constructor(request?: ChatRequest, sentAt = performance.now(), sentAtEpoch = Date.now()) {
    this.#request = request;
    this.#sentAt = sentAt;
    this.#sentAtEpoch = sentAtEpoch;
  }

  /**
   * Feeds raw SSE bytes; events split across network chunks are reassembled, and so are
   * characters split across them. (Bytes of a character cut off by the stream's end belong to
   * no complete line, so they are never read.)
   */
  feedSse(chunk: Buffer | string, at = performance.now()): void {
    this.#pending += typeof chunk === 'string' ? chunk : this.#decoder.write(chunk);
    let newline: number;
    while ((newline = this.#pending.indexOf('\n')) >= 0) {
      const line = this.#pending.slice(0, newline).replace(/\r$/, '');
      this.#pending = this.#pending.slice(newline + 1);
      if (!line.startsWith('data:')) continue;
      const data = line.slice(5).trim();
      if (data === '[DONE]') {
        this.#done = true;
        continue;
      }
      if (data.length === 0) continue;
      let parsed: unknown;
      try {
        parsed = JSON.parse(data);
      } catch {
        this.#malformed = true;
        continue;
      }
      this.#applyChunk(parsed, at);
    }
  }

  /** Feeds a complete non-streaming JSON body. */
  feedJson(body: Buffer | string): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(typeof body === 'string' ? body : body.toString('utf8'));
    } catch {
      this.#malformed = true;
      return;
    }
    const value = asRecord(parsed);
    this.#id = asString(value.id) ?? this.#id;
    this.#model = asString(value.model) ?? this.#model;
    for (const raw of asArray(value.choices)) {
      const choice = asRecord(raw);
      const state = this.#choice(asNumber(choice.index) ?? 0);
      const message = asRecord(choice.message);
      const content = asString(message.content);
      if (content !== undefined && content.length > 0) {
        state.content += content;
        state.sawContent = true;
      }
      asArray(message.tool_calls).forEach((call, index) => this.#applyToolCall(state, call, index));
      state.finishReason = asString(choice.finish_reason) ?? state.finishReason;
    }
    this.#readUsage(value.usage);
    // A non-streamed answer arrives whole: there is no first token to time (TTFT stays null)
    // and no inter-token gaps; only E2E is measured.
    if (this.#choices.size > 0) this.#done = true;
  }

  /** A chunk with content, reasoning or a tool-call delta has arrived (the first token, DESIGN §4). */
  get sawFirstToken(): boolean {
    return this.#firstContentAt !== null;
  }

  end(at = performance.now()): void {
    this.#endAt ??= at;
  }

  result(streamed: boolean): AssembledResult {
    const endAt = this.#endAt ?? performance.now();
    const choices = [...this.#choices.entries()]
      .sort(([a], [b]) => a - b)
      .map(([index, state]) => ({
        index,
        content: state.sawContent ? state.content : null,
        toolCalls: [...state.toolCalls.entries()]
          .sort(([a], [b]) => a - b)
          .map(([, call]): ToolCall => ({ ...(call.id === undefined ? {} : { id: call.id }), type: call.type, function: { name: call.name, arguments: call.arguments } })),
        finishReason: state.finishReason,
      }));
    const response: AssembledResponse | null =
      choices.length === 0 ? null : { ...(this.#id === undefined ? {} : { id: this.#id }), ...(this.#model === undefined ? {} : { model: this.#model }), choices };
    const usage = this.#usage ?? (response === null ? null : estimateUsage(this.#request, response));
    const complete = this.#done || choices.some((choice) => choice.finishReason !== null);
    return { response, usage, timing: this.#timing(endAt, usage, streamed), complete, malformed: this.#malformed };
  }

  #timing(endAt: number, usage: Usage | null, streamed: boolean): Timing {
    const ttft = this.#firstContentAt === null ? null : this.#firstContentAt - this.#sentAt;
    const times = this.#contentTimes;
    const first = times[0];
    const last = times[times.length - 1];
    const span = first !== undefined && last !== undefined ? last - first : 0;
    const completion = usage?.completion ?? 0;
    const gaps: number[] = [];
    for (let i = 1; i < times.length; i++) gaps.push((times[i] ?? 0) - (times[i - 1] ?? 0));
    return {
      sentAt: this.#sentAtEpoch,
      ttftMs: ttft === null ? null : round(ttft),
      e2eMs: round(Math.max(0, endAt - this.#sentAt)),
      tpotMs: streamed && completion > 1 && span > 0 ? round(span / (completion - 1)) : null,
      itl: gaps.length === 0 ? null : summarizeGaps(gaps),
      outputTokensPerSec: streamed && span > 0 && completion > 0 ? round((completion * 1000) / span) : null,
    };
  }

  #applyChunk(parsed: unknown, at: number): void {
    const chunk = asRecord(parsed);
    this.#id ??= asString(chunk.id);
    this.#model ??= asString(chunk.model);
    let sawOutput = false;
    for (const raw of asArray(chunk.choices)) {
      const choice = asRecord(raw);
      const state = this.#choice(asNumber(choice.index) ?? 0);
      const delta = asRecord(choice.delta);
      const content = asString(delta.content);
      if (content !== undefined && content.length > 0) {
        state.content += content;
        state.sawContent = true;
        sawOutput = true;
      }
      const reasoning = asString(delta.reasoning_content) ?? asString(delta.reasoning);
      if (reasoning !== undefined && reasoning.length > 0) sawOutput = true;
      for (const call of asArray(delta.tool_calls)) {
        this.#applyToolCall(state, call, undefined);
        sawOutput = true;
      }
      state.finishReason = asString(choice.finish_reason) ?? state.finishReason;
    }
    this.#readUsage(chunk.usage);
    if (sawOutput) {
      this.#firstContentAt ??= at;
      this.#contentTimes.push(at);
    }
  }

  #applyToolCall(state: ChoiceState, raw: unknown, fallbackIndex: number | undefined): void {
    const call = asRecord(raw);
    const index = asNumber(call.index) ?? fallbackIndex ?? state.toolCalls.size;
    const fn = asRecord(call.function);
    const existing = state.toolCalls.get(index);
    if (existing === undefined) {
      const id = asString(call.id);
      state.toolCalls.set(index, { ...(id === undefined ? {} : { id }), type: asString(call.type) ?? 'function', name: asString(fn.name) ?? '', arguments: asString(fn.arguments) ?? '' });
    } else {
      existing.name += asString(fn.name) ?? '';
      existing.arguments += asString(fn.arguments) ?? '';
    }
  }

  #readUsage(raw: unknown): void {
    const usage = asRecord(raw);
    const prompt = asNumber(usage.prompt_tokens);
    const completion = asNumber(usage.completion_tokens);
    if (prompt === undefined || completion === undefined) return;
    this.#usage = { prompt, completion, total: asNumber(usage.total_tokens) ?? prompt + completion, source: 'usage' };
  }

  #choice(index: number): ChoiceState {
    let state = this.#choices.get(index);
    if (state === undefined) {
      state = { content: '', sawContent: false, toolCalls: new Map(), finishReason: null };
      this.#choices.set(index, state);
    }
    return state;
  }
}

/** About four characters a token, the usual rule of thumb for English text. */
export function estimateTokens(text: string): number {
  return text.length === 0 ? 0 : Math.max(1, Math.ceil(text.length / 4));
}

function estimateUsage(request: ChatRequest | undefined, response: AssembledResponse): Usage {
  const promptText = (request?.messages ?? []).map((message) => (typeof message.content === 'string' ? message.content : JSON.stringify(message.content ?? ''))).join('\n');
  const completionText = response.choices.map((choice) => (choice.content ?? '') + choice.toolCalls.map((call) => call.function.arguments).join('')).join('');
  const prompt = estimateTokens(promptText);
  const completion = estimateTokens(completionText);
  return { prompt, completion, total: prompt + completion, source: 'estimate' };
}

function summarizeGaps(gaps: number[]): ItlSummary {
  const sorted = [...gaps].sort((a, b) => a - b);
  const at = (q: number) => {
    const h = (sorted.length - 1) * q;
    const lo = Math.floor(h);
    const hi = Math.ceil(h);
    return (sorted[lo] ?? 0) + (h - lo) * ((sorted[hi] ?? 0) - (sorted[lo] ?? 0));
  };
  return { n: sorted.length, p50: round(at(0.5)), p90: round(at(0.9)), p99: round(at(0.99)), max: round(sorted[sorted.length - 1] ?? 0) };
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}

function asRecord(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}
function asArray(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}
function asString(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}
function asNumber(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}
