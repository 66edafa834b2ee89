/** Heartbeat (API key 12): the request and response fields, transcribed from Kafka's HeartbeatRequest.json and HeartbeatResponse.json. */
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
