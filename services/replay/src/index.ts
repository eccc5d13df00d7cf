export * from './config.js';
export * from './replay-service.js';
export * from './rate-limiter.js';
export * from './budget.js';
export * from './circuit-breaker.js';
export * from './retry.js';
export * from './window.js';
export * from './candidate-request.js';
export { main } from './main.js';
