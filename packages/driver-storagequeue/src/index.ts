/**
 * `@switchyard/driver-storagequeue`: the Azure Storage Queues transport for Switchyard.
 * @module
 */

export {
  formatPoisonMessage,
  type MessageEncoding,
  type ParsedPoisonMessage,
  POISON_MARKER,
  type PoisonHeader,
  parsePoisonMessage,
} from './codec.js';
export { POISON_SUFFIX, queueNameProblem } from './names.js';
export {
  DEFAULT_SEND_CONCURRENCY,
  type StorageQueueTransport,
  type StorageQueueTransportOptions,
  storageQueueTransport,
} from './transport.js';
export {
  fromStorageQueueTrigger,
  type StorageQueueDeliveryMeta,
  type StorageQueueTriggerInput,
  type StorageQueueTriggerMetadata,
} from './trigger.js';
