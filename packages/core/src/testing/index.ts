/**
 * Test helpers for driver authors: the conformance suites every driver passes against its real
 * backend, fault-injecting wrappers for transports and stores, a store that counts committed
 * effects and checks they happened exactly once, a job whose results are known in advance, and a
 * seeded random source to replay a run.
 * @module
 */

export { type ChainJob, type ChainJobOptions, chainJob } from './chain-job.js';
export { type CrashWindowOptions, crashWindowSuite } from './crash-windows.js';
export {
  countEffects,
  type EffectCounts,
  type ExactlyOnceExpectation,
  exactlyOnceViolations,
} from './effect-counts.js';
export {
  type FaultyStore,
  faultyStore,
  type MutatingStoreMethod,
  type StoreFaults,
} from './faulty-store.js';
export {
  type FaultStats,
  type FaultyTransport,
  faultyTransport,
  type TransportFaults,
} from './faulty-transport.js';
export { type FlowControlSuiteOptions, flowControlSuite } from './flow-control.js';
export {
  type TaskRowClaimsConformanceOptions,
  taskRowClaimsConformance,
} from './row-claims-conformance.js';
export { seededRandom } from './seeded-random.js';
export { storeConformance } from './store-conformance.js';
export { type TransportConformanceOptions, transportConformance } from './transport-conformance.js';
