/**
 * CreateTopics (API key 19): the request and response fields, transcribed from Kafka's CreateTopicsRequest.json and
 * CreateTopicsResponse.json. Their notes on what each version changed:
 *
 * Request:
 * Version 1 adds validateOnly.
 *
 * Version 4 makes partitions/replicationFactor optional even when assignments are not present (KIP-464)
 *
 * Version 5 is the first flexible version.
 * Version 5 also returns topic configs in the response (KIP-525).
 *
 * Version 6 is identical to version 5 but may return a THROTTLING_QUOTA_EXCEEDED error
 * in the response if the topics creation is throttled (KIP-599).
 *
 * Version 7 is the same as version 6.
 *
 * Response:
 * Version 1 adds a per-topic error message string.
 *
 * Version 2 adds the throttle time.
 *
 * Starting in version 3, on quota violation, brokers send out responses before throttling.
 *
 * Version 4 makes partitions/replicationFactor optional even when assignments are not present (KIP-464).
 *
 * Version 5 is the first flexible version.
 * Version 5 also returns topic configs in the response (KIP-525).
 *
 * Version 6 is identical to version 5 but may return a THROTTLING_QUOTA_EXCEEDED error
 * in the response if the topics creation is throttled (KIP-599).
 *
 * Version 7 returns the topic ID of the newly created topic if creation is successful.
 */
import type { ApiTable } from '../types.ts';

export const createTopics: ApiTable = {
  name: 'CreateTopics',
  key: 19,
  versions: '0-7',
  flexibleVersions: '5+',
  request: [
    {
      name: 'topics',
      type: '[]struct',
      versions: '0+',
      fields: [
        { name: 'name', type: 'string', versions: '0+' },
        { name: 'numPartitions', type: 'int32', versions: '0+' },
        { name: 'replicationFactor', type: 'int16', versions: '0+' },
        {
          name: 'assignments',
          type: '[]struct',
          versions: '0+',
          fields: [
            { name: 'partitionIndex', type: 'int32', versions: '0+' },
            { name: 'brokerIds', type: '[]int32', versions: '0+' },
          ],
        },
        {
          name: 'configs',
          type: '[]struct',
          versions: '0+',
          fields: [
            { name: 'name', type: 'string', versions: '0+' },
            { name: 'value', type: 'string', versions: '0+', nullableVersions: '0+' },
          ],
        },
      ],
    },
    { name: 'timeoutMs', type: 'int32', versions: '0+', default: 60000 },
    { name: 'validateOnly', type: 'bool', versions: '1+', default: false },
  ],
  response: [
    { name: 'throttleTimeMs', type: 'int32', versions: '2+', ignorable: true },
    {
      name: 'topics',
      type: '[]struct',
      versions: '0+',
      fields: [
        { name: 'name', type: 'string', versions: '0+' },
        { name: 'topicId', type: 'uuid', versions: '7+', ignorable: true },
        { name: 'errorCode', type: 'int16', versions: '0+' },
        { name: 'errorMessage', type: 'string', versions: '1+', nullableVersions: '0+', ignorable: true },
        { name: 'topicConfigErrorCode', type: 'int16', versions: '5+', taggedVersions: '5+', tag: 0, ignorable: true },
        { name: 'numPartitions', type: 'int32', versions: '5+', default: -1, ignorable: true },
        { name: 'replicationFactor', type: 'int16', versions: '5+', default: -1, ignorable: true },
        {
          name: 'configs',
          type: '[]struct',
          versions: '5+',
          nullableVersions: '5+',
          ignorable: true,
          fields: [
            { name: 'name', type: 'string', versions: '5+' },
            { name: 'value', type: 'string', versions: '5+', nullableVersions: '5+' },
            { name: 'readOnly', type: 'bool', versions: '5+' },
            { name: 'configSource', type: 'int8', versions: '5+', default: -1, ignorable: true },
            { name: 'isSensitive', type: 'bool', versions: '5+' },
          ],
        },
      ],
    },
  ],
};
