/**
 * SyncGroup (API key 14): the request and response fields, transcribed from Kafka's SyncGroupRequest.json and
 * SyncGroupResponse.json. Their notes on what each version changed:
 *
 * Request:
 * Versions 1 and 2 are the same as version 0.
 *
 * Starting from version 3, we add a new field called groupInstanceId to indicate member identity across restarts.
 *
 * Version 4 is the first flexible version.
 *
 * Starting from version 5, the client sends the Protocol Type and the Protocol Name
 * to the broker (KIP-559). The broker will reject the request if they are inconsistent
 * with the Type and Name known by the broker.
 *
 * Response:
 * Version 1 adds throttle time.
 *
 * Starting in version 2, on quota violation, brokers send out responses before throttling.
 *
 * Starting from version 3, syncGroupRequest supports a new field called groupInstanceId to indicate member identity across restarts.
 *
 * Version 4 is the first flexible version.
 *
 * Starting from version 5, the broker sends back the Protocol Type and the Protocol Name
 * to the client (KIP-559).
 */
import type { ApiTable } from '../types.ts';

export const syncGroup: ApiTable = {
  name: 'SyncGroup',
  key: 14,
  versions: '0-5',
  flexibleVersions: '4+',
  request: [
    { name: 'groupId', type: 'string', versions: '0+' },
    { name: 'generationId', type: 'int32', versions: '0+' },
    { name: 'memberId', type: 'string', versions: '0+' },
    { name: 'groupInstanceId', type: 'string', versions: '3+', nullableVersions: '3+', default: null },
    { name: 'protocolType', type: 'string', versions: '5+', nullableVersions: '5+', default: null, ignorable: true },
    { name: 'protocolName', type: 'string', versions: '5+', nullableVersions: '5+', default: null, ignorable: true },
    {
      name: 'assignments',
      type: '[]struct',
      versions: '0+',
      fields: [
        { name: 'memberId', type: 'string', versions: '0+' },
        { name: 'assignment', type: 'bytes', versions: '0+' },
      ],
    },
  ],
  response: [
    { name: 'throttleTimeMs', type: 'int32', versions: '1+', ignorable: true },
    { name: 'errorCode', type: 'int16', versions: '0+' },
    { name: 'protocolType', type: 'string', versions: '5+', nullableVersions: '5+', default: null, ignorable: true },
    { name: 'protocolName', type: 'string', versions: '5+', nullableVersions: '5+', default: null, ignorable: true },
    { name: 'assignment', type: 'bytes', versions: '0+' },
  ],
};
