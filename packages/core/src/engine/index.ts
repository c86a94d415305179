/**
 * The engine's public face: `createSwitchyard`, the `Switchyard` interface and the types of its
 * options and views. Every other module under engine/ is internal.
 * @module
 */
export type { Switchyard } from './api.js';
export type { BatchingOptions } from './batching.js';
export { createSwitchyard } from './switchyard.js';
export type * from './types.js';
