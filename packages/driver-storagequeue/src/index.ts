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
  type QueueLayoutOptions,
  type StorageQueueTransportOptions,
} from './options.js';
export {
  STORAGE_QUEUE_LIST_PRICES,
  type StorageQueuePrices,
  storageQueueCost,
} from './prices.js';
export { type StorageQueueTransport, storageQueueTransport } from './transport.js';
export {
  fromStorageQueueTrigger,
  type StorageQueueDeliveryMeta,
  type StorageQueueTriggerInput,
  type StorageQueueTriggerMetadata,
  type StorageQueueTriggerQueue,
  storageQueueTriggerQueues,
} from './trigger.js';
