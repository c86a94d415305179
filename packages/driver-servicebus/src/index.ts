/**
 * `@switchyard/driver-servicebus`: the Azure Service Bus transport, dead-letter tooling and the
 * Azure Functions trigger helper.
 * @module
 */

export {
  SERVICE_BUS_LIST_PRICES,
  type ServiceBusCostInput,
  type ServiceBusPrices,
  serviceBusCost,
} from './prices.js';
export {
  type ServiceBusTierDefaults,
  type ServiceBusTierName,
  serviceBusTierDefaults,
} from './tiers.js';
export {
  DIAGNOSTIC_ID,
  MessageTooLargeError,
  type ServiceBusPacing,
  type ServiceBusTransport,
  type ServiceBusTransportOptions,
  serviceBusTransport,
} from './transport.js';
export {
  fromServiceBusTrigger,
  type ServiceBusTriggerContext,
  type ServiceBusTriggerInput,
  type ServiceBusTriggerMeta,
  type ServiceBusTriggerOptions,
  type ServiceBusTriggerQueue,
  type ServiceBusTriggerQueuesOptions,
  serviceBusTriggerQueues,
} from './trigger.js';
