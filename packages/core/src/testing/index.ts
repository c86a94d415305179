/**
 * Test helpers for driver authors: the conformance suites every driver passes against its real
 * backend, and fault-injecting wrappers for transports and stores.
 * @module
 */
export { transportConformance, type TransportConformanceOptions } from './transport-conformance.js';
export { storeConformance } from './store-conformance.js';
export { faultyTransport, type FaultStats, type FaultyTransport, type TransportFaults } from './faulty-transport.js';
export { faultyStore, type FaultyStore, type MutatingStoreMethod, type StoreFaults } from './faulty-store.js';
export { crashWindowSuite, type CrashWindowOptions } from './crash-windows.js';
