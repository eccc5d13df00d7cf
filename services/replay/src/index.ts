export * from './config.js';
export * from './replay-service.js';
export { RateLimiter, sleep, type ArmLimits, type RateLimiterOptions } from '@shadow-replay/platform';
export * from './budget.js';
export * from './circuit-breaker.js';
export * from './window.js';
export * from './candidate-request.js';
export { main } from './main.js';
export * from './adapters/index.js';
