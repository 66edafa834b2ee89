/**
 * DeleteGroups (API key 42): the request and response fields, transcribed from Kafka's
 * DeleteGroupsRequest.json and DeleteGroupsResponse.json. Their notes on what each version changed:
 *
 * Version 1 is the same as version 0.
 *
 * Version 2 is the first flexible version.
 */
import type { ApiTable } from '../types.ts';

export const deleteGroups: ApiTable = {
  name: 'DeleteGroups',
  key: 42,
  versions: '0-2',
  flexibleVersions: '2+',
  request: [{ name: 'groupsNames', type: '[]string', versions: '0+' }],
  response: [
    { name: 'throttleTimeMs', type: 'int32', versions: '0+' },
    {
      name: 'results',
      type: '[]struct',
      versions: '0+',
      fields: [
        { name: 'groupId', type: 'string', versions: '0+' },
        { name: 'errorCode', type: 'int16', versions: '0+' },
      ],
    },
  ],
};
