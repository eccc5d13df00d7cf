export * from './config.js';
export * from './join-service.js';
export * from './join-state.js';
export { main } from './main.js';
