export * from './events.js';
export * from './outcomes.js';
export * from './topics.js';
export * from './ids.js';
export * from './decode.js';
export * from './dead-letter.js';
export * from './errors.js';
export * from './config.js';
