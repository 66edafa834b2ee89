/**
 * ListOffsets (API key 2): the request and response fields, transcribed from Kafka's ListOffsetsRequest.json and
 * ListOffsetsResponse.json. Their notes on what each version changed:
 *
 * Request:
 * Version 1 removes MaxNumOffsets.  From this version forward, only a single
 * offset can be returned.
 *
 * Version 2 adds the isolation level, which is used for transactional reads.
 *
 * Version 3 is the same as version 2.
 *
 * Version 4 adds the current leader epoch, which is used for fencing.
 *
 * Version 5 is the same as version 4.
 *
 * Version 6 enables flexible versions.
 *
 * Version 7 enables listing offsets by max timestamp (KIP-734).
 *
 * Version 8 enables listing offsets by local log start offset (KIP-405).
 *
 * Version 9 enables listing offsets by last tiered offset (KIP-1005).
 *
 * Version 10 enables async remote list offsets support (KIP-1075)
 *
 * Response:
 * Version 1 removes the offsets array in favor of returning a single offset.
 * Version 1 also adds the timestamp associated with the returned offset.
 *
 * Version 2 adds the throttle time.
 *
 * Starting in version 3, on quota violation, brokers send out responses before throttling.
 *
 * Version 4 adds the leader epoch, which is used for fencing.
 *
 * Version 5 adds a new error code, OFFSET_NOT_AVAILABLE.
 *
 * Version 6 enables flexible versions.
 *
 * Version 7 is the same as version 6 (KIP-734).
 *
 * Version 8 enables listing offsets by local log start offset.
 * This is the earliest log start offset in the local log. (KIP-405).
 *
 * Version 9 enables listing offsets by last tiered offset (KIP-1005).
 *
 * Version 10 enables async remote list offsets support (KIP-1075)
 */
import type { ApiTable } from '../types.ts';

export const listOffsets: ApiTable = {
  name: 'ListOffsets',
  key: 2,
  versions: '0-10',
  flexibleVersions: '6+',
  request: [
    { name: 'replicaId', type: 'int32', versions: '0+' },
    { name: 'isolationLevel', type: 'int8', versions: '2+' },
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
            { name: 'currentLeaderEpoch', type: 'int32', versions: '4+', default: -1, ignorable: true },
            { name: 'timestamp', type: 'int64', versions: '0+' },
            { name: 'maxNumOffsets', type: 'int32', versions: '0', default: 1 },
          ],
        },
      ],
    },
    { name: 'timeoutMs', type: 'int32', versions: '10+', ignorable: true },
  ],
  response: [
    { name: 'throttleTimeMs', type: 'int32', versions: '2+', ignorable: true },
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
            { name: 'oldStyleOffsets', type: '[]int64', versions: '0' },
            { name: 'timestamp', type: 'int64', versions: '1+', default: -1 },
            { name: 'offset', type: 'int64', versions: '1+', default: -1 },
            { name: 'leaderEpoch', type: 'int32', versions: '4+', default: -1 },
          ],
        },
      ],
    },
  ],
};
