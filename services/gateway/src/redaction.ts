import type { AssembledResponse, ChatRequest, RedactionBuiltin } from '@shadow-replay/contracts';

interface Rule {
  name: string;
  regex: RegExp;
  replacement: string;
  /** Extra check on a match (e.g. Luhn for card numbers). */
  accept?: (match: string) => boolean;
}

// Order matters: API keys and cards are matched before the looser phone pattern sees their digits.
const BUILTINS: Record<RedactionBuiltin, Omit<Rule, 'replacement'>> = {
  apiKey: {
    name: 'apiKey',
    regex: /\b(?:sk|pk|rk)-[A-Za-z0-9_-]{16,}|\bAKIA[0-9A-Z]{16}\b|\bgh[pousr]_[A-Za-z0-9]{20,}\b|\bxox[abpr]-[A-Za-z0-9-]{10,}|\bBearer\s+[A-Za-z0-9._~+/-]{20,}=*|\b(?:api|access|secret)[_-]?(?:key|token)\s*[:=]\s*['"]?[A-Za-z0-9._-]{12,}/gi,
  },
  email: { name: 'email', regex: /[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/g },
  card: { name: 'card', regex: /\b\d(?:[ -]?\d){12,18}\b/g, accept: (match) => luhn(match.replace(/\D/g, '')) },
  // A phone number stands alone: no digit group right before or after it (that would be a longer
  // number, such as a card that failed the Luhn check).
  phone: {
    name: 'phone',
    regex: /(?<![\w+]|\d[ .-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)|\d{2,4})[ .-]?\d{3,4}[ .-]?\d{3,5}(?![ .-]?\d|\w)/g,
    accept: (match) => match.replace(/\D/g, '').length >= 9,
  },
};
const BUILTIN_ORDER: readonly RedactionBuiltin[] = ['apiKey', 'email', 'card', 'phone'];

export interface RedactionConfig {
  builtins: RedactionBuiltin[];
  patterns: Array<{ name: string; regex: string; replacement?: string | undefined }>;
}

/** Request fields that identify the end user; they are dropped rather than redacted. */
export const END_USER_FIELDS: readonly string[] = ['user', 'safety_identifier'];

/**
 * Removes personal data and secrets from what the gateway publishes. Every string of the request
 * body and of the assembled answer is redacted, at any depth and whatever field holds it
 * (message text, tool definitions, tool-call arguments, tool results, `metadata`, unknown
 * fields), object keys included; the structure is kept. The fields that identify the end user
 * (`user`, `safety_identifier`) are dropped. The user's request to the live model is untouched;
 * only what is published is redacted.
 */
export class Redactor {
  readonly #rules: Rule[];

  constructor(config: RedactionConfig) {
    this.#rules = [
      ...BUILTIN_ORDER.filter((name) => config.builtins.includes(name)).map((name) => ({ ...BUILTINS[name], replacement: `[REDACTED:${name}]` })),
      ...config.patterns.map((pattern) => ({ name: pattern.name, regex: new RegExp(pattern.regex, 'g'), replacement: pattern.replacement ?? `[REDACTED:${pattern.name}]` })),
    ];
  }

  text(value: string): string {
    let out = value;
    for (const rule of this.#rules) {
      rule.regex.lastIndex = 0;
      out = out.replace(rule.regex, (match) => (rule.accept === undefined || rule.accept(match) ? rule.replacement : match));
    }
    return out;
  }

  /** A redacted copy of the request body, without the end user's identifiers. */
  request(body: ChatRequest): ChatRequest {
    // The walk keeps every object an object and every string a string: still a ChatRequest.
    const out = this.json(body) as ChatRequest;
    for (const field of END_USER_FIELDS) delete out[field];
    return out;
  }

  response(response: AssembledResponse | null): AssembledResponse | null {
    return response === null ? null : (this.json(response) as AssembledResponse);
  }

  /**
   * A copy of a JSON value with every string (object keys included) redacted. A string holding
   * JSON (tool-call arguments) is redacted as text, so its formatting is kept; the built-in
   * patterns never touch JSON syntax, but a custom pattern that spans it leaves the string
   * unparsable: privacy before validity.
   */
  json(value: unknown): unknown {
    if (typeof value === 'string') return this.text(value);
    if (Array.isArray(value)) return value.map((item: unknown) => this.json(item));
    if (typeof value === 'object' && value !== null) {
      const out: Record<string, unknown> = {};
      for (const [key, item] of Object.entries(value)) out[this.text(key)] = this.json(item);
      return out;
    }
    return value;
  }
}

function luhn(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let digit = Number(digits[digits.length - 1 - i]);
    if (i % 2 === 1) {
      digit *= 2;
      if (digit > 9) digit -= 9;
    }
    sum += digit;
  }
  return digits.length >= 13 && sum % 10 === 0;
}
