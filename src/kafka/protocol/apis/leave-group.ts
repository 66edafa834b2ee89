/**
 * LeaveGroup (API key 13): the request and response fields, transcribed from Kafka's LeaveGroupRequest.json and
 * LeaveGroupResponse.json. Their notes on what each version changed:
 *
 * Request:
 * Version 1 and 2 are the same as version 0.
 *
 * Version 3 defines batch processing scheme with group.instance.id + member.id for identity
 *
 * Version 4 is the first flexible version.
 *
 * Version 5 adds the Reason field (KIP-800).
 *
 * Response:
 * Version 1 adds the throttle time.
 *
 * Starting in version 2, on quota violation, brokers send out responses before throttling.
 *
 * Starting in version 3, we will make leave group request into batch mode and add group.instance.id.
 *
 * Version 4 is the first flexible version.
 *
 * Version 5 is the same as version 4.
 */
import type { ApiTable } from '../types.ts';

export const leaveGroup: ApiTable = {
  name: 'LeaveGroup',
  key: 13,
  versions: '0-5',
  flexibleVersions: '4+',
  request: [
    { name: 'groupId', type: 'string', versions: '0+' },
    { name: 'memberId', type: 'string', versions: '0-2' },
    {
      name: 'members',
      type: '[]struct',
      versions: '3+',
      fields: [
        { name: 'memberId', type: 'string', versions: '3+' },
        { name: 'groupInstanceId', type: 'string', versions: '3+', nullableVersions: '3+', default: null },
        { name: 'reason', type: 'string', versions: '5+', nullableVersions: '5+', default: null, ignorable: true },
      ],
    },
  ],
  response: [
    { name: 'throttleTimeMs', type: 'int32', versions: '1+', ignorable: true },
    { name: 'errorCode', type: 'int16', versions: '0+' },
    {
      name: 'members',
      type: '[]struct',
      versions: '3+',
      fields: [
        { name: 'memberId', type: 'string', versions: '3+' },
        { name: 'groupInstanceId', type: 'string', versions: '3+', nullableVersions: '3+' },
        { name: 'errorCode', type: 'int16', versions: '3+' },
      ],
    },
  ],
};
