/**
 * Heartbeat (API key 12): the request and response fields, transcribed from Kafka's HeartbeatRequest.json and
 * HeartbeatResponse.json. Their notes on what each version changed:
 *
 * Request:
 * Version 1 and version 2 are the same as version 0.
 *
 * Starting from version 3, we add a new field called groupInstanceId to indicate member identity across restarts.
 *
 * Version 4 is the first flexible version.
 *
 * Response:
 * Version 1 adds throttle time.
 *
 * Starting in version 2, on quota violation, brokers send out responses before throttling.
 *
 * Starting from version 3, heartbeatRequest supports a new field called groupInstanceId to indicate member identity across restarts.
 *
 * Version 4 is the first flexible version.
 */
import type { ApiTable } from '../types.ts';

export const heartbeat: ApiTable = {
  name: 'Heartbeat',
  key: 12,
  versions: '0-4',
  flexibleVersions: '4+',
  request: [
    { name: 'groupId', type: 'string', versions: '0+' },
    { name: 'generationId', type: 'int32', versions: '0+' },
    { name: 'memberId', type: 'string', versions: '0+' },
    { name: 'groupInstanceId', type: 'string', versions: '3+', nullableVersions: '3+', default: null },
  ],
  response: [
    { name: 'throttleTimeMs', type: 'int32', versions: '1+', ignorable: true },
    { name: 'errorCode', type: 'int16', versions: '0+' },
  ],
};
