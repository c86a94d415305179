/**
 * A local AMQP 1.0 emulator of Azure Service Bus queues, for tests and benchmarks with the real
 * `@azure/service-bus` client (connection string with `UseDevelopmentEmulator=true`), optionally
 * enforcing a Standard or Premium namespace's limits.
 * @module
 */
export {
  type EmulatorOptions,
  type QueueSettings,
  type QueueStats,
  type ServiceBusEmulator,
  startEmulator,
} from './server.js';
export { SERVER_BUSY, type ThrottleStats } from './throttle.js';
export { type ServiceBusTier, type TierOptions, type TierProfile, tierProfile } from './tiers.js';
