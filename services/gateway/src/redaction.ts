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

/**
 * Removes personal data and secrets from message content before it leaves the gateway. The
 * user's request to the live model is untouched; only what is published is redacted.
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

  /** A copy of the request body with every text content redacted (plain strings and text parts). */
  request(body: ChatRequest): ChatRequest {
    return { ...body, messages: body.messages.map((message) => ({ ...message, content: this.#content(message.content) })) };
  }

  response(response: AssembledResponse | null): AssembledResponse | null {
    if (response === null) return null;
    return { ...response, choices: response.choices.map((choice) => ({ ...choice, content: choice.content === null ? null : this.text(choice.content) })) };
  }

  #content(content: unknown): unknown {
    if (typeof content === 'string') return this.text(content);
    if (Array.isArray(content)) {
      return content.map((part: unknown) => {
        if (typeof part === 'object' && part !== null && typeof (part as { text?: unknown }).text === 'string') {
          return { ...part, text: this.text((part as { text: string }).text) };
        }
        return part;
      });
    }
    return content;
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
