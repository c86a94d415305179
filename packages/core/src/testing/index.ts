/**
 * Test helpers for driver authors: the conformance suites every driver passes against its real
 * backend, and a fault-injecting transport wrapper.
 * @module
 */
export { transportConformance, type TransportConformanceOptions } from './transport-conformance.js';
export { storeConformance } from './store-conformance.js';
