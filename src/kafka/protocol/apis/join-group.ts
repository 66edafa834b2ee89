/**
 * JoinGroup (API key 11): the request and response fields, transcribed from Kafka's JoinGroupRequest.json and
 * JoinGroupResponse.json. Their notes on what each version changed:
 *
 * Request:
 * Version 1 adds RebalanceTimeoutMs.
 *
 * Version 2 and 3 are the same as version 1.
 *
 * Starting from version 4, the client needs to issue a second request to join group
 *
 * Starting from version 5, we add a new field called groupInstanceId to indicate member identity across restarts.
 * with assigned id.
 *
 * Version 6 is the first flexible version.
 *
 * Version 7 is the same as version 6.
 *
 * Version 8 adds the Reason field (KIP-800).
 *
 * Version 9 is the same as version 8.
 *
 * Response:
 * Version 1 is the same as version 0.
 *
 * Version 2 adds throttle time.
 *
 * Starting in version 3, on quota violation, brokers send out responses before throttling.
 *
 * Starting in version 4, the client needs to issue a second request to join group
 * with assigned id.
 *
 * Version 5 is bumped to apply group.instance.id to identify member across restarts.
 *
 * Version 6 is the first flexible version.
 *
 * Starting from version 7, the broker sends back the Protocol Type to the client (KIP-559).
 *
 * Version 8 is the same as version 7.
 *
 * Version 9 adds the SkipAssignment field.
 */
import type { ApiTable } from '../types.ts';

export const joinGroup: ApiTable = {
  name: 'JoinGroup',
  key: 11,
  versions: '0-9',
  flexibleVersions: '6+',
  request: [
    { name: 'groupId', type: 'string', versions: '0+' },
    { name: 'sessionTimeoutMs', type: 'int32', versions: '0+' },
    { name: 'rebalanceTimeoutMs', type: 'int32', versions: '1+', default: -1, ignorable: true },
    { name: 'memberId', type: 'string', versions: '0+' },
    { name: 'groupInstanceId', type: 'string', versions: '5+', nullableVersions: '5+', default: null },
    { name: 'protocolType', type: 'string', versions: '0+' },
    {
      name: 'protocols',
      type: '[]struct',
      versions: '0+',
      fields: [
        { name: 'name', type: 'string', versions: '0+' },
        { name: 'metadata', type: 'bytes', versions: '0+' },
      ],
    },
    { name: 'reason', type: 'string', versions: '8+', nullableVersions: '8+', default: null, ignorable: true },
  ],
  response: [
    { name: 'throttleTimeMs', type: 'int32', versions: '2+', ignorable: true },
    { name: 'errorCode', type: 'int16', versions: '0+' },
    { name: 'generationId', type: 'int32', versions: '0+', default: -1 },
    { name: 'protocolType', type: 'string', versions: '7+', nullableVersions: '7+', default: null, ignorable: true },
    { name: 'protocolName', type: 'string', versions: '0+', nullableVersions: '7+' },
    { name: 'leader', type: 'string', versions: '0+' },
    { name: 'skipAssignment', type: 'bool', versions: '9+', default: false },
    { name: 'memberId', type: 'string', versions: '0+' },
    {
      name: 'members',
      type: '[]struct',
      versions: '0+',
      fields: [
        { name: 'memberId', type: 'string', versions: '0+' },
        {
          name: 'groupInstanceId',
          type: 'string',
          versions: '5+',
          nullableVersions: '5+',
          default: null,
          ignorable: true,
        },
        { name: 'metadata', type: 'bytes', versions: '0+' },
      ],
    },
  ],
};
