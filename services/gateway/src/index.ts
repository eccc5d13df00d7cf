export * from './capture.js';
export * from './config.js';
export * from './gateway-service.js';
export * from './publish-buffer.js';
export * from './publisher-thread.js';
export * from './redaction.js';
export * from './sampler.js';
export * from './shadow-publisher.js';
export { main } from './main.js';
