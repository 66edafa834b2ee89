/**
 * DescribeConfigs (API key 32): the request and response fields, transcribed from Kafka's DescribeConfigsRequest.json and
 * DescribeConfigsResponse.json. Their notes on what each version changed:
 *
 * Request:
 * Version 1 adds IncludeSynonyms.
 * Version 2 is the same as version 1.
 * Version 4 enables flexible versions.
 *
 * Response:
 * Version 1 adds ConfigSource and the synonyms.
 * Starting in version 2, on quota violation, brokers send out responses before throttling.
 * Version 4 enables flexible versions.
 */
import type { ApiTable } from '../types.ts';

export const describeConfigs: ApiTable = {
  name: 'DescribeConfigs',
  key: 32,
  versions: '0-4',
  flexibleVersions: '4+',
  request: [
    {
      name: 'resources',
      type: '[]struct',
      versions: '0+',
      fields: [
        { name: 'resourceType', type: 'int8', versions: '0+' },
        { name: 'resourceName', type: 'string', versions: '0+' },
        { name: 'configurationKeys', type: '[]string', versions: '0+', nullableVersions: '0+' },
      ],
    },
    { name: 'includeSynonyms', type: 'bool', versions: '1+', default: false },
    { name: 'includeDocumentation', type: 'bool', versions: '3+', default: false },
  ],
  response: [
    { name: 'throttleTimeMs', type: 'int32', versions: '0+' },
    {
      name: 'results',
      type: '[]struct',
      versions: '0+',
      fields: [
        { name: 'errorCode', type: 'int16', versions: '0+' },
        { name: 'errorMessage', type: 'string', versions: '0+', nullableVersions: '0+' },
        { name: 'resourceType', type: 'int8', versions: '0+' },
        { name: 'resourceName', type: 'string', versions: '0+' },
        {
          name: 'configs',
          type: '[]struct',
          versions: '0+',
          fields: [
            { name: 'name', type: 'string', versions: '0+' },
            { name: 'value', type: 'string', versions: '0+', nullableVersions: '0+' },
            { name: 'readOnly', type: 'bool', versions: '0+' },
            { name: 'isDefault', type: 'bool', versions: '0' },
            { name: 'configSource', type: 'int8', versions: '1+', default: -1, ignorable: true },
            { name: 'isSensitive', type: 'bool', versions: '0+' },
            {
              name: 'synonyms',
              type: '[]struct',
              versions: '1+',
              ignorable: true,
              fields: [
                { name: 'name', type: 'string', versions: '1+' },
                { name: 'value', type: 'string', versions: '1+', nullableVersions: '0+' },
                { name: 'source', type: 'int8', versions: '1+' },
              ],
            },
            { name: 'configType', type: 'int8', versions: '3+', default: 0, ignorable: true },
            { name: 'documentation', type: 'string', versions: '3+', nullableVersions: '0+', ignorable: true },
          ],
        },
      ],
    },
  ],
};
