/**
 * A local AMQP 1.0 emulator of Azure Service Bus queues, for tests and benchmarks with the real
 * `@azure/service-bus` client (connection string with `UseDevelopmentEmulator=true`).
 * @module
 */
export {
  type EmulatorOptions,
  type QueueSettings,
  type QueueStats,
  type ServiceBusEmulator,
  startEmulator,
} from './server.js';
