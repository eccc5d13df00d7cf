import { DEFAULT_TENANT_HEADER, type ResponseEvent } from '@shadow-replay/contracts';

/** The slice keys of one pair; a key the pair does not carry is absent. */
export interface PairOrigin {
  route?: string;
  model?: string;
  tenant?: string;
}

/**
 * Where a pair's request came from, for the report's slices. Read from the `origin` replay copies
 * onto the candidate's answer (the stable answer's, when only it has one):
 *
 * - route: the request's route;
 * - model: the model the client asked for; without an origin, the model the stable endpoint
 *   reported (its answer's `model`, else the requested one), which names the same live model;
 * - tenant: the `tenantHeader` among the published headers, else the request event's `tenant`.
 */
export function pairOrigin(stable: ResponseEvent, candidate: ResponseEvent, tenantHeader: string = DEFAULT_TENANT_HEADER): PairOrigin {
  const origin = candidate.origin ?? stable.origin;
  const route = origin?.route;
  const model = origin?.model ?? stable.endpoint.model ?? undefined;
  const tenant = origin?.headers?.[tenantHeader.toLowerCase()] ?? origin?.tenant;
  return {
    ...(route === undefined ? {} : { route }),
    ...(model === undefined || model === '' ? {} : { model }),
    ...(tenant === undefined || tenant === '' ? {} : { tenant }),
  };
}
