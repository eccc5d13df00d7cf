/**
 * Fixed vocabulary the simulated answers are drawn from. Changing it changes every
 * simulated answer, so treat it as frozen: recorded runs compare against it.
 */
export const vocabulary: readonly string[] = Object.freeze([
  'the', 'model', 'answer', 'request', 'data', 'system', 'result', 'value', 'time', 'user',
  'service', 'latency', 'token', 'stream', 'queue', 'message', 'partition', 'consumer', 'producer', 'topic',
  'record', 'offset', 'replica', 'leader', 'cluster', 'node', 'shadow', 'candidate', 'baseline', 'traffic',
  'sample', 'metric', 'window', 'budget', 'limit', 'rate', 'error', 'retry', 'backoff', 'timeout',
  'prompt', 'context', 'output', 'input', 'batch', 'cache', 'memory', 'compute', 'server', 'client',
  'is', 'was', 'will', 'can', 'should', 'might', 'must', 'does', 'has', 'makes',
  'uses', 'keeps', 'reads', 'writes', 'sends', 'returns', 'checks', 'compares', 'measures', 'handles',
  'and', 'or', 'but', 'so', 'because', 'while', 'when', 'if', 'then', 'also',
  'a', 'an', 'this', 'that', 'each', 'every', 'some', 'many', 'few', 'most',
  'in', 'on', 'at', 'to', 'from', 'with', 'without', 'for', 'by', 'over',
  'fast', 'slow', 'stable', 'safe', 'simple', 'clear', 'small', 'large', 'new', 'old',
  'better', 'worse', 'similar', 'different', 'correct', 'useful', 'likely', 'rarely', 'often', 'always',
  'first', 'last', 'next', 'same', 'other', 'whole', 'full', 'partial', 'quick', 'careful',
  'we', 'it', 'they', 'you', 'one', 'two', 'three', 'ten', 'hundred', 'thousand',
  'here', 'there', 'now', 'later', 'again', 'still', 'only', 'just', 'even', 'not',
  'question', 'reason', 'example', 'step', 'plan', 'idea', 'change', 'test', 'case', 'point',
]);
