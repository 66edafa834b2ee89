/**
 * DescribeGroups (API key 15): the request and response fields, transcribed from Kafka's DescribeGroupsRequest.json and
 * DescribeGroupsResponse.json. Their notes on what each version changed:
 *
 * Request:
 * Versions 1 and 2 are the same as version 0.
 *
 * Starting in version 3, authorized operations can be requested.
 *
 * Starting in version 4, the response will include group.instance.id info for members.
 *
 * Version 5 is the first flexible version.
 *
 * Response:
 * Version 1 added throttle time.
 *
 * Starting in version 2, on quota violation, brokers send out responses before throttling.
 *
 * Starting in version 3, brokers can send authorized operations.
 *
 * Starting in version 4, the response will optionally include group.instance.id info for members.
 *
 * Version 5 is the first flexible version.
 */
import type { ApiTable } from '../types.ts';

export const describeGroups: ApiTable = {
  name: 'DescribeGroups',
  key: 15,
  versions: '0-5',
  flexibleVersions: '5+',
  request: [
    { name: 'groups', type: '[]string', versions: '0+' },
    { name: 'includeAuthorizedOperations', type: 'bool', versions: '3+' },
  ],
  response: [
    { name: 'throttleTimeMs', type: 'int32', versions: '1+', ignorable: true },
    {
      name: 'groups',
      type: '[]struct',
      versions: '0+',
      fields: [
        { name: 'errorCode', type: 'int16', versions: '0+' },
        { name: 'groupId', type: 'string', versions: '0+' },
        { name: 'groupState', type: 'string', versions: '0+' },
        { name: 'protocolType', type: 'string', versions: '0+' },
        { name: 'protocolData', type: 'string', versions: '0+' },
        {
          name: 'members',
          type: '[]struct',
          versions: '0+',
          fields: [
            { name: 'memberId', type: 'string', versions: '0+' },
            {
              name: 'groupInstanceId',
              type: 'string',
              versions: '4+',
              nullableVersions: '4+',
              default: null,
              ignorable: true,
            },
            { name: 'clientId', type: 'string', versions: '0+' },
            { name: 'clientHost', type: 'string', versions: '0+' },
            { name: 'memberMetadata', type: 'bytes', versions: '0+' },
            { name: 'memberAssignment', type: 'bytes', versions: '0+' },
          ],
        },
        { name: 'authorizedOperations', type: 'int32', versions: '3+', default: -2147483648 },
      ],
    },
  ],
};
