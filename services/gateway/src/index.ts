export * from './config.js';
export * from './gateway-service.js';
export * from './publish-buffer.js';
export * from './redaction.js';
export * from './sampler.js';
export { main } from './main.js';
