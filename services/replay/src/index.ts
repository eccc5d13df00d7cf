export * from './config.js';
export * from './replay-service.js';
export * from './rate-limiter.js';
export * from './candidate-request.js';
export { main } from './main.js';
