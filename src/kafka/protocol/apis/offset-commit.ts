/**
 * OffsetCommit (API key 8): the request and response fields, transcribed from Kafka's OffsetCommitRequest.json and
 * OffsetCommitResponse.json. Their notes on what each version changed:
 *
 * Request:
 * Version 1 adds timestamp and group membership information, as well as the commit timestamp.
 *
 * Version 2 adds retention time.  It removes the commit timestamp added in version 1.
 *
 * Version 3 and 4 are the same as version 2.
 *
 * Version 5 removes the retention time, which is now controlled only by a broker configuration.
 *
 * Version 6 adds the leader epoch for fencing.
 *
 * version 7 adds a new field called groupInstanceId to indicate member identity across restarts.
 *
 * Version 8 is the first flexible version.
 *
 * Version 9 is the first version that can be used with the new consumer group protocol (KIP-848). The
 * request is the same as version 8.
 *
 * Response:
 * Versions 1 and 2 are the same as version 0.
 *
 * Version 3 adds the throttle time to the response.
 *
 * Starting in version 4, on quota violation, brokers send out responses before throttling.
 *
 * Versions 5 and 6 are the same as version 4.
 *
 * Version 7 offsetCommitRequest supports a new field called groupInstanceId to indicate member identity across restarts.
 *
 * Version 8 is the first flexible version.
 *
 * Version 9 is the first version that can be used with the new consumer group protocol (KIP-848). The response is
 * the same as version 8 but can return STALE_MEMBER_EPOCH when the new consumer group protocol is used and
 * GROUP_ID_NOT_FOUND when the group does not exist for both protocols.
 * Supported errors:
 * - GROUP_AUTHORIZATION_FAILED (version 0+)
 * - NOT_COORDINATOR (version 0+)
 * - COORDINATOR_NOT_AVAILABLE (version 0+)
 * - COORDINATOR_LOAD_IN_PROGRESS (version 0+)
 * - ILLEGAL_GENERATION (version 1+)
 * - UNKNOWN_MEMBER_ID (version 1+)
 * - INVALID_COMMIT_OFFSET_SIZE (version 0+)
 * - FENCED_MEMBER_EPOCH (version 7+)
 * - GROUP_ID_NOT_FOUND (version 9+)
 * - STALE_MEMBER_EPOCH (version 9+)
 */
import type { ApiTable } from '../types.ts';

export const offsetCommit: ApiTable = {
  name: 'OffsetCommit',
  key: 8,
  versions: '0-9',
  flexibleVersions: '8+',
  request: [
    { name: 'groupId', type: 'string', versions: '0+' },
    { name: 'generationIdOrMemberEpoch', type: 'int32', versions: '1+', default: -1, ignorable: true },
    { name: 'memberId', type: 'string', versions: '1+', ignorable: true },
    { name: 'groupInstanceId', type: 'string', versions: '7+', nullableVersions: '7+', default: null },
    { name: 'retentionTimeMs', type: 'int64', versions: '2-4', default: -1, ignorable: true },
    {
      name: 'topics',
      type: '[]struct',
      versions: '0+',
      fields: [
        { name: 'name', type: 'string', versions: '0+' },
        {
          name: 'partitions',
          type: '[]struct',
          versions: '0+',
          fields: [
            { name: 'partitionIndex', type: 'int32', versions: '0+' },
            { name: 'committedOffset', type: 'int64', versions: '0+' },
            { name: 'committedLeaderEpoch', type: 'int32', versions: '6+', default: -1, ignorable: true },
            { name: 'commitTimestamp', type: 'int64', versions: '1', default: -1 },
            { name: 'committedMetadata', type: 'string', versions: '0+', nullableVersions: '0+' },
          ],
        },
      ],
    },
  ],
  response: [
    { name: 'throttleTimeMs', type: 'int32', versions: '3+', ignorable: true },
    {
      name: 'topics',
      type: '[]struct',
      versions: '0+',
      fields: [
        { name: 'name', type: 'string', versions: '0+' },
        {
          name: 'partitions',
          type: '[]struct',
          versions: '0+',
          fields: [
            { name: 'partitionIndex', type: 'int32', versions: '0+' },
            { name: 'errorCode', type: 'int16', versions: '0+' },
          ],
        },
      ],
    },
  ],
};
