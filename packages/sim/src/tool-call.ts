import type { SimChatRequest } from './chat-request.js';
import { hashToUnit, intBetween, pick, seededRandom, type RandomSource } from './random.js';
import { vocabulary } from './vocabulary.js';

/** A function call the simulated model decided to make. */
export interface SimToolCallPlan {
  readonly name: string;
  /** JSON text, as OpenAI sends it. */
  readonly arguments: string;
}

type Tool = NonNullable<SimChatRequest['tools']>[number];

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function words(random: RandomSource, count: number): string {
  return Array.from({ length: count }, () => pick(random, vocabulary)).join(' ');
}

function valueFor(schema: unknown, random: RandomSource): unknown {
  if (!isRecord(schema)) return words(random, 2);
  if (Array.isArray(schema['enum']) && schema['enum'].length > 0) return pick(random, schema['enum']);
  switch (schema['type']) {
    case 'integer':
    case 'number':
      return intBetween(random, 1, 100);
    case 'boolean':
      return random() < 0.5;
    case 'array':
      return [valueFor(schema['items'], random)];
    case 'object':
      return argumentsFor(schema, random);
    default:
      return words(random, intBetween(random, 1, 3));
  }
}

// Fills every declared property (required or not); a schema without properties gets {"input": …}.
function argumentsFor(parameters: unknown, random: RandomSource): Record<string, unknown> {
  const properties = isRecord(parameters) && isRecord(parameters['properties']) ? parameters['properties'] : undefined;
  if (properties === undefined || Object.keys(properties).length === 0) return { input: words(random, 3) };
  return Object.fromEntries(Object.entries(properties).map(([key, schema]) => [key, valueFor(schema, random)]));
}

/**
 * Decides whether to answer with a tool call and builds it. `tool_choice: "none"` never
 * calls, `"required"` or a named function always calls; otherwise (auto) a call happens
 * when hash("tool-call", seed, prompt) < toolCallRate — deterministic per prompt and seed,
 * so a candidate sharing stable's seed calls tools on the same prompts. The function is
 * the named one, else the first tool; arguments are generated from its JSON-schema
 * `parameters` by a PRNG seeded with (seed, prompt).
 */
export function planToolCall(
  request: SimChatRequest,
  prompt: string,
  seed: string,
  toolCallRate: number,
): SimToolCallPlan | undefined {
  const tools = request.tools ?? [];
  const first = tools[0];
  if (first === undefined) return undefined;
  const choice = request.tool_choice ?? 'auto';
  if (choice === 'none') return undefined;
  let tool: Tool = first;
  if (typeof choice === 'object') {
    tool = tools.find((candidate) => candidate.function.name === choice.function.name) ?? first;
  } else if (choice === 'auto' && !(hashToUnit('tool-call', seed, prompt) < toolCallRate)) {
    return undefined;
  }
  const random = seededRandom('tool-arguments', seed, prompt);
  const name = typeof choice === 'object' ? choice.function.name : tool.function.name;
  return { name, arguments: JSON.stringify(argumentsFor(tool.function.parameters, random)) };
}

/** Completion tokens of a tool call: JSON has no whitespace to count, so ~4 characters per token. */
export function toolCallTokens(plan: SimToolCallPlan): number {
  return Math.max(1, Math.ceil((plan.name.length + plan.arguments.length) / 4));
}
