/**
 * OffsetFetch (API key 9): the request and response fields, transcribed from Kafka's OffsetFetchRequest.json and
 * OffsetFetchResponse.json. Their notes on what each version changed:
 *
 * Request:
 * In version 0, the request read offsets from ZK.
 *
 * Starting in version 1, the broker supports fetching offsets from the internal __consumer_offsets topic.
 *
 * Starting in version 2, the request can contain a null topics array to indicate that offsets
 * for all topics should be fetched. It also returns a top level error code
 * for group or coordinator level errors.
 *
 * Version 3, 4, and 5 are the same as version 2.
 *
 * Version 6 is the first flexible version.
 *
 * Version 7 is adding the require stable flag.
 *
 * Version 8 is adding support for fetching offsets for multiple groups at a time.
 *
 * Version 9 is the first version that can be used with the new consumer group protocol (KIP-848). It adds
 * the MemberId and MemberEpoch fields. Those are filled in and validated when the new consumer protocol is used.
 *
 * Response:
 * Version 1 is the same as version 0.
 *
 * Version 2 adds a top-level error code.
 *
 * Version 3 adds the throttle time.
 *
 * Starting in version 4, on quota violation, brokers send out responses before throttling.
 *
 * Version 5 adds the leader epoch to the committed offset.
 *
 * Version 6 is the first flexible version.
 *
 * Version 7 adds pending offset commit as new error response on partition level.
 *
 * Version 8 is adding support for fetching offsets for multiple groups
 *
 * Version 9 is the first version that can be used with the new consumer group protocol (KIP-848). The response is
 * the same as version 8 but can return STALE_MEMBER_EPOCH and UNKNOWN_MEMBER_ID errors when the new consumer group
 * protocol is used.
 * Supported errors:
 * - GROUP_AUTHORIZATION_FAILED (version 0+)
 * - NOT_COORDINATOR (version 0+)
 * - COORDINATOR_NOT_AVAILABLE (version 0+)
 * - COORDINATOR_LOAD_IN_PROGRESS (version 0+)
 * - GROUP_ID_NOT_FOUND (version 0+)
 * - UNSTABLE_OFFSET_COMMIT (version 7+)
 * - UNKNOWN_MEMBER_ID (version 9+)
 * - STALE_MEMBER_EPOCH (version 9+)
 */
import type { ApiTable } from '../types.ts';

export const offsetFetch: ApiTable = {
  name: 'OffsetFetch',
  key: 9,
  versions: '0-9',
  flexibleVersions: '6+',
  request: [
    { name: 'groupId', type: 'string', versions: '0-7' },
    {
      name: 'topics',
      type: '[]struct',
      versions: '0-7',
      nullableVersions: '2-7',
      fields: [
        { name: 'name', type: 'string', versions: '0-7' },
        { name: 'partitionIndexes', type: '[]int32', versions: '0-7' },
      ],
    },
    {
      name: 'groups',
      type: '[]struct',
      versions: '8+',
      fields: [
        { name: 'groupId', type: 'string', versions: '8+' },
        { name: 'memberId', type: 'string', versions: '9+', nullableVersions: '9+', default: null, ignorable: true },
        { name: 'memberEpoch', type: 'int32', versions: '9+', default: -1, ignorable: true },
        {
          name: 'topics',
          type: '[]struct',
          versions: '8+',
          nullableVersions: '8+',
          fields: [
            { name: 'name', type: 'string', versions: '8+' },
            { name: 'partitionIndexes', type: '[]int32', versions: '8+' },
          ],
        },
      ],
    },
    { name: 'requireStable', type: 'bool', versions: '7+', default: false },
  ],
  response: [
    { name: 'throttleTimeMs', type: 'int32', versions: '3+', ignorable: true },
    {
      name: 'topics',
      type: '[]struct',
      versions: '0-7',
      fields: [
        { name: 'name', type: 'string', versions: '0-7' },
        {
          name: 'partitions',
          type: '[]struct',
          versions: '0-7',
          fields: [
            { name: 'partitionIndex', type: 'int32', versions: '0-7' },
            { name: 'committedOffset', type: 'int64', versions: '0-7' },
            { name: 'committedLeaderEpoch', type: 'int32', versions: '5-7', default: -1, ignorable: true },
            { name: 'metadata', type: 'string', versions: '0-7', nullableVersions: '0-7' },
            { name: 'errorCode', type: 'int16', versions: '0-7' },
          ],
        },
      ],
    },
    { name: 'errorCode', type: 'int16', versions: '2-7', default: 0, ignorable: true },
    {
      name: 'groups',
      type: '[]struct',
      versions: '8+',
      fields: [
        { name: 'groupId', type: 'string', versions: '8+' },
        {
          name: 'topics',
          type: '[]struct',
          versions: '8+',
          fields: [
            { name: 'name', type: 'string', versions: '8+' },
            {
              name: 'partitions',
              type: '[]struct',
              versions: '8+',
              fields: [
                { name: 'partitionIndex', type: 'int32', versions: '8+' },
                { name: 'committedOffset', type: 'int64', versions: '8+' },
                { name: 'committedLeaderEpoch', type: 'int32', versions: '8+', default: -1, ignorable: true },
                { name: 'metadata', type: 'string', versions: '8+', nullableVersions: '8+' },
                { name: 'errorCode', type: 'int16', versions: '8+' },
              ],
            },
          ],
        },
        { name: 'errorCode', type: 'int16', versions: '8+', default: 0 },
      ],
    },
  ],
};
