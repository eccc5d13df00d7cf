import type { CandidateConfig, ChatRequest, RequestEvent } from '@shadow-replay/contracts';

/** True when the request offers tools or carries tool results. */
export function usesTools(body: ChatRequest): boolean {
  const tools = body.tools;
  return (Array.isArray(tools) && tools.length > 0) || body.messages.some((message) => message.role === 'tool' || message.tool_calls !== undefined);
}

/**
 * The body a candidate receives: the recorded request with the candidate's transforms. Tool
 * results recorded in the conversation are replayed as they are; nothing is executed here.
 * `stableCompletionTokens` is the live answer's length, when replay has it.
 */
export function candidateBody(event: RequestEvent, candidate: CandidateConfig, stableCompletionTokens?: number): ChatRequest {
  const { transforms } = candidate;
  let messages = event.body.messages;
  if (candidate.toolPolicy === 'strip') {
    messages = messages
      .filter((message) => message.role !== 'tool')
      .map((message) => {
        if (message.tool_calls === undefined) return message;
        const { tool_calls: _dropped, ...rest } = message;
        return rest;
      });
  }
  if (transforms.systemPrompt !== undefined) {
    const { mode, text } = transforms.systemPrompt;
    const index = messages.findIndex((message) => message.role === 'system');
    const current = index >= 0 && typeof messages[index]?.content === 'string' ? (messages[index]?.content) : '';
    const system = { role: 'system', content: mode === 'replace' || current === '' ? text : `${text}\n\n${current}` };
    messages = index >= 0 ? messages.map((message, i) => (i === index ? { ...message, ...system } : message)) : [system, ...messages];
  }
  const body: ChatRequest = { ...event.body, ...transforms.params, messages };
  if (candidate.toolPolicy === 'strip') {
    delete body.tools;
    delete body.tool_choice;
    delete body.parallel_tool_calls;
  }
  if (candidate.model !== undefined) body.model = candidate.model;
  const caps: number[] = [];
  if (transforms.maxTokensCap !== undefined) caps.push(transforms.maxTokensCap);
  const fromStable = transforms.maxTokensFromStable;
  if (fromStable !== undefined && stableCompletionTokens !== undefined) caps.push(Math.max(fromStable.minimum, Math.ceil(fromStable.factor * stableCompletionTokens)));
  if (caps.length > 0) {
    const requested = body.max_completion_tokens ?? body.max_tokens;
    const capped = Math.min(...caps, ...(requested === undefined ? [] : [requested]));
    if (body.max_completion_tokens !== undefined) body.max_completion_tokens = capped;
    else body.max_tokens = capped;
  }
  if (candidate.stream) {
    body.stream = true;
    body.stream_options = { include_usage: true };
  } else {
    delete body.stream;
    delete body.stream_options;
  }
  return body;
}

/**
 * Headers of a shadow call. Built from configuration only: nothing of the user's request
 * (credentials included) is forwarded.
 */
export function candidateHeaders(event: RequestEvent, candidate: CandidateConfig, experimentId: string, apiKey: string | undefined): Record<string, string> {
  return {
    ...candidate.headers,
    ...(apiKey === undefined ? {} : { authorization: `Bearer ${apiKey}` }),
    'x-shadow-experiment': experimentId,
    'x-shadow-request-id': event.requestId,
  };
}

/** Prompt tokens (about four characters each) plus the output the request allows or the arm expects. */
export function estimateTokens(body: ChatRequest, expectedOutputTokens: number): { prompt: number; completion: number } {
  const text = body.messages.map((message) => (typeof message.content === 'string' ? message.content : JSON.stringify(message.content ?? ''))).join('\n');
  return { prompt: Math.ceil(text.length / 4), completion: body.max_completion_tokens ?? body.max_tokens ?? expectedOutputTokens };
}
