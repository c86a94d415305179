export type { SecretRef, SecretSource } from './types.js';
