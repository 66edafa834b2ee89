/**
 * ListGroups (API key 16): the request and response fields, transcribed from Kafka's ListGroupsRequest.json and
 * ListGroupsResponse.json. Their notes on what each version changed:
 *
 * Request:
 * Version 1 and 2 are the same as version 0.
 *
 * Version 3 is the first flexible version.
 *
 * Version 4 adds the StatesFilter field (KIP-518).
 *
 * Version 5 adds the TypesFilter field (KIP-848).
 *
 * Response:
 * Version 1 adds the throttle time.
 *
 * Starting in version 2, on quota violation, brokers send out
 * responses before throttling.
 *
 * Version 3 is the first flexible version.
 *
 * Version 4 adds the GroupState field (KIP-518).
 *
 * Version 5 adds the GroupType field (KIP-848).
 */
import type { ApiTable } from '../types.ts';

export const listGroups: ApiTable = {
  name: 'ListGroups',
  key: 16,
  versions: '0-5',
  flexibleVersions: '3+',
  request: [
    { name: 'statesFilter', type: '[]string', versions: '4+' },
    { name: 'typesFilter', type: '[]string', versions: '5+' },
  ],
  response: [
    { name: 'throttleTimeMs', type: 'int32', versions: '1+', ignorable: true },
    { name: 'errorCode', type: 'int16', versions: '0+' },
    {
      name: 'groups',
      type: '[]struct',
      versions: '0+',
      fields: [
        { name: 'groupId', type: 'string', versions: '0+' },
        { name: 'protocolType', type: 'string', versions: '0+' },
        { name: 'groupState', type: 'string', versions: '4+', ignorable: true },
        { name: 'groupType', type: 'string', versions: '5+', ignorable: true },
      ],
    },
  ],
};
