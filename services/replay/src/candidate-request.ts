import type { CandidateConfig, ChatRequest, RequestEvent } from '@shadow-replay/contracts';

/** The body a candidate receives: the recorded request with the candidate's overrides. */
export function candidateBody(event: RequestEvent, candidate: CandidateConfig): ChatRequest {
  const body: ChatRequest = { ...event.body };
  if (candidate.model !== undefined) body.model = candidate.model;
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
