export * from './config.js';
export * from './evaluator-service.js';
export * from './judge-client.js';
export { main } from './main.js';
