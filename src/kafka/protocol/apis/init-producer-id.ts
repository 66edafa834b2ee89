/**
 * InitProducerId (API key 22): the request and response fields, transcribed from Kafka's InitProducerIdRequest.json and
 * InitProducerIdResponse.json. Their notes on what each version changed:
 *
 * Request:
 * Version 1 is the same as version 0.
 *
 * Version 2 is the first flexible version.
 *
 * Version 3 adds ProducerId and ProducerEpoch, allowing producers to try to resume after an INVALID_PRODUCER_EPOCH error
 *
 * Version 4 adds the support for new error code PRODUCER_FENCED.
 *
 * Verison 5 adds support for new error code TRANSACTION_ABORTABLE (KIP-890).
 *
 * Response:
 * Starting in version 1, on quota violation, brokers send out responses before throttling.
 *
 * Version 2 is the first flexible version.
 *
 * Version 3 is the same as version 2.
 *
 * Version 4 adds the support for new error code PRODUCER_FENCED.
 *
 * Version 5 adds support for new error code TRANSACTION_ABORTABLE (KIP-890).
 */
import type { ApiTable } from '../types.ts';

export const initProducerId: ApiTable = {
  name: 'InitProducerId',
  key: 22,
  versions: '0-5',
  flexibleVersions: '2+',
  request: [
    { name: 'transactionalId', type: 'string', versions: '0+', nullableVersions: '0+' },
    { name: 'transactionTimeoutMs', type: 'int32', versions: '0+' },
    { name: 'producerId', type: 'int64', versions: '3+', default: -1 },
    { name: 'producerEpoch', type: 'int16', versions: '3+', default: -1 },
  ],
  response: [
    { name: 'throttleTimeMs', type: 'int32', versions: '0+', ignorable: true },
    { name: 'errorCode', type: 'int16', versions: '0+' },
    { name: 'producerId', type: 'int64', versions: '0+', default: -1 },
    { name: 'producerEpoch', type: 'int16', versions: '0+' },
  ],
};
