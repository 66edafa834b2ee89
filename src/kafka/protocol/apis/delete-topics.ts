/**
 * DeleteTopics (API key 20): the request and response fields, transcribed from Kafka's DeleteTopicsRequest.json and
 * DeleteTopicsResponse.json. Their notes on what each version changed:
 *
 * Request:
 * Versions 0, 1, 2, and 3 are the same.
 *
 * Version 4 is the first flexible version.
 *
 * Version 5 adds ErrorMessage in the response and may return a THROTTLING_QUOTA_EXCEEDED error
 * in the response if the topics deletion is throttled (KIP-599).
 *
 * Version 6 reorganizes topics, adds topic IDs and allows topic names to be null.
 *
 * Response:
 * Version 1 adds the throttle time.
 *
 * Starting in version 2, on quota violation, brokers send out responses before throttling.
 *
 * Starting in version 3, a TOPIC_DELETION_DISABLED error code may be returned.
 *
 * Version 4 is the first flexible version.
 *
 * Version 5 adds ErrorMessage in the response and may return a THROTTLING_QUOTA_EXCEEDED error
 * in the response if the topics deletion is throttled (KIP-599).
 *
 * Version 6 adds topic ID to responses. An UNSUPPORTED_VERSION error code will be returned when attempting to
 * delete using topic IDs when IBP < 2.8. UNKNOWN_TOPIC_ID error code will be returned when IBP is at least 2.8, but
 * the topic ID was not found.
 */
import type { ApiTable } from '../types.ts';

export const deleteTopics: ApiTable = {
  name: 'DeleteTopics',
  key: 20,
  versions: '0-6',
  flexibleVersions: '4+',
  request: [
    {
      name: 'topics',
      type: '[]struct',
      versions: '6+',
      fields: [
        { name: 'name', type: 'string', versions: '6+', nullableVersions: '6+', default: null },
        { name: 'topicId', type: 'uuid', versions: '6+' },
      ],
    },
    { name: 'topicNames', type: '[]string', versions: '0-5', ignorable: true },
    { name: 'timeoutMs', type: 'int32', versions: '0+' },
  ],
  response: [
    { name: 'throttleTimeMs', type: 'int32', versions: '1+', ignorable: true },
    {
      name: 'responses',
      type: '[]struct',
      versions: '0+',
      fields: [
        { name: 'name', type: 'string', versions: '0+', nullableVersions: '6+' },
        { name: 'topicId', type: 'uuid', versions: '6+', ignorable: true },
        { name: 'errorCode', type: 'int16', versions: '0+' },
        {
          name: 'errorMessage',
          type: 'string',
          versions: '5+',
          nullableVersions: '5+',
          default: null,
          ignorable: true,
        },
      ],
    },
  ],
};
