/**
 * FindCoordinator (API key 10): the request and response fields, transcribed from Kafka's FindCoordinatorRequest.json and
 * FindCoordinatorResponse.json. Their notes on what each version changed:
 *
 * Request:
 * Version 1 adds KeyType.
 *
 * Version 2 is the same as version 1.
 *
 * Version 3 is the first flexible version.
 *
 * Version 4 adds support for batching via CoordinatorKeys (KIP-699)
 *
 * Version 5 adds support for new error code TRANSACTION_ABORTABLE (KIP-890).
 *
 * Version 6 adds support for share groups (KIP-932).
 *
 * Response:
 * Version 1 adds throttle time and error messages.
 *
 * Starting in version 2, on quota violation, brokers send out responses before throttling.
 *
 * Version 3 is the first flexible version.
 *
 * Version 4 adds support for batching via Coordinators (KIP-699)
 *
 * Version 5 adds support for new error code TRANSACTION_ABORTABLE (KIP-890).
 *
 * Version 6 adds support for share groups (KIP-932).
 */
import type { ApiTable } from '../types.ts';

export const findCoordinator: ApiTable = {
  name: 'FindCoordinator',
  key: 10,
  versions: '0-6',
  flexibleVersions: '3+',
  request: [
    { name: 'key', type: 'string', versions: '0-3' },
    { name: 'keyType', type: 'int8', versions: '1+', default: 0 },
    { name: 'coordinatorKeys', type: '[]string', versions: '4+' },
  ],
  response: [
    { name: 'throttleTimeMs', type: 'int32', versions: '1+', ignorable: true },
    { name: 'errorCode', type: 'int16', versions: '0-3' },
    { name: 'errorMessage', type: 'string', versions: '1-3', nullableVersions: '1-3', ignorable: true },
    { name: 'nodeId', type: 'int32', versions: '0-3' },
    { name: 'host', type: 'string', versions: '0-3' },
    { name: 'port', type: 'int32', versions: '0-3' },
    {
      name: 'coordinators',
      type: '[]struct',
      versions: '4+',
      fields: [
        { name: 'key', type: 'string', versions: '4+' },
        { name: 'nodeId', type: 'int32', versions: '4+' },
        { name: 'host', type: 'string', versions: '4+' },
        { name: 'port', type: 'int32', versions: '4+' },
        { name: 'errorCode', type: 'int16', versions: '4+' },
        { name: 'errorMessage', type: 'string', versions: '4+', nullableVersions: '4+', ignorable: true },
      ],
    },
  ],
};
