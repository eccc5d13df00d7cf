export * from './config.js';
export * from './evaluator-service.js';
export { main } from './main.js';
