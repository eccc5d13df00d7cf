export { main } from './main.js';
export * from './pipeline.js';
export * from './report-command.js';
export * from './demo-command.js';
export * from './traffic.js';
export * from './settings.js';
export * from './window-command.js';
