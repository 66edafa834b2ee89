/**
 * Fetch (API key 1): the request and response fields, transcribed from Kafka's FetchRequest.json and
 * FetchResponse.json. Their notes on what each version changed:
 *
 * Request:
 * Version 1 is the same as version 0.
 *
 * Starting in Version 2, the requester must be able to handle Kafka Log
 * Message format version 1.
 *
 * Version 3 adds MaxBytes.  Starting in version 3, the partition ordering in
 * the request is now relevant.  Partitions will be processed in the order
 * they appear in the request.
 *
 * Version 4 adds IsolationLevel.  Starting in version 4, the reqestor must be
 * able to handle Kafka log message format version 2.
 *
 * Version 5 adds LogStartOffset to indicate the earliest available offset of
 * partition data that can be consumed.
 *
 * Version 6 is the same as version 5.
 *
 * Version 7 adds incremental fetch request support.
 *
 * Version 8 is the same as version 7.
 *
 * Version 9 adds CurrentLeaderEpoch, as described in KIP-320.
 *
 * Version 10 indicates that we can use the ZStd compression algorithm, as
 * described in KIP-110.
 * Version 12 adds flexible versions support as well as epoch validation through
 * the `LastFetchedEpoch` field
 *
 * Version 13 replaces topic names with topic IDs (KIP-516). May return UNKNOWN_TOPIC_ID error code.
 *
 * Version 14 is the same as version 13 but it also receives a new error called OffsetMovedToTieredStorageException(KIP-405)
 *
 * Version 15 adds the ReplicaState which includes new field ReplicaEpoch and the ReplicaId. Also,
 * deprecate the old ReplicaId field and set its default value to -1. (KIP-903)
 *
 * Version 16 is the same as version 15 (KIP-951).
 *
 * Version 17 adds directory id support from KIP-853
 *
 * Response:
 * Version 1 adds throttle time.
 *
 * Version 2 and 3 are the same as version 1.
 *
 * Version 4 adds features for transactional consumption.
 *
 * Version 5 adds LogStartOffset to indicate the earliest available offset of
 * partition data that can be consumed.
 *
 * Starting in version 6, we may return KAFKA_STORAGE_ERROR as an error code.
 *
 * Version 7 adds incremental fetch request support.
 *
 * Starting in version 8, on quota violation, brokers send out responses before throttling.
 *
 * Version 9 is the same as version 8.
 *
 * Version 10 indicates that the response data can use the ZStd compression
 * algorithm, as described in KIP-110.
 * Version 12 adds support for flexible versions, epoch detection through the `TruncationOffset` field,
 * and leader discovery through the `CurrentLeader` field
 *
 * Version 13 replaces the topic name field with topic ID (KIP-516).
 *
 * Version 14 is the same as version 13 but it also receives a new error called OffsetMovedToTieredStorageException (KIP-405)
 *
 * Version 15 is the same as version 14 (KIP-903).
 *
 * Version 16 adds the 'NodeEndpoints' field (KIP-951).
 *
 * Version 17 no changes to the response (KIP-853).
 */
import type { ApiTable } from '../types.ts';

export const fetch: ApiTable = {
  name: 'Fetch',
  key: 1,
  versions: '0-17',
  flexibleVersions: '12+',
  request: [
    {
      name: 'clusterId',
      type: 'string',
      versions: '12+',
      nullableVersions: '12+',
      taggedVersions: '12+',
      tag: 0,
      default: null,
      ignorable: true,
    },
    { name: 'replicaId', type: 'int32', versions: '0-14', default: -1 },
    {
      name: 'replicaState',
      type: 'struct',
      versions: '15+',
      taggedVersions: '15+',
      tag: 1,
      fields: [
        { name: 'replicaId', type: 'int32', versions: '15+', default: -1 },
        { name: 'replicaEpoch', type: 'int64', versions: '15+', default: -1 },
      ],
    },
    { name: 'maxWaitMs', type: 'int32', versions: '0+' },
    { name: 'minBytes', type: 'int32', versions: '0+' },
    { name: 'maxBytes', type: 'int32', versions: '3+', default: 2147483647, ignorable: true },
    { name: 'isolationLevel', type: 'int8', versions: '4+', default: 0, ignorable: true },
    { name: 'sessionId', type: 'int32', versions: '7+', default: 0, ignorable: true },
    { name: 'sessionEpoch', type: 'int32', versions: '7+', default: -1, ignorable: true },
    {
      name: 'topics',
      type: '[]struct',
      versions: '0+',
      fields: [
        { name: 'topic', type: 'string', versions: '0-12', ignorable: true },
        { name: 'topicId', type: 'uuid', versions: '13+', ignorable: true },
        {
          name: 'partitions',
          type: '[]struct',
          versions: '0+',
          fields: [
            { name: 'partition', type: 'int32', versions: '0+' },
            { name: 'currentLeaderEpoch', type: 'int32', versions: '9+', default: -1, ignorable: true },
            { name: 'fetchOffset', type: 'int64', versions: '0+' },
            { name: 'lastFetchedEpoch', type: 'int32', versions: '12+', default: -1 },
            { name: 'logStartOffset', type: 'int64', versions: '5+', default: -1, ignorable: true },
            { name: 'partitionMaxBytes', type: 'int32', versions: '0+' },
            {
              name: 'replicaDirectoryId',
              type: 'uuid',
              versions: '17+',
              taggedVersions: '17+',
              tag: 0,
              ignorable: true,
            },
          ],
        },
      ],
    },
    {
      name: 'forgottenTopicsData',
      type: '[]struct',
      versions: '7+',
      fields: [
        { name: 'topic', type: 'string', versions: '7-12', ignorable: true },
        { name: 'topicId', type: 'uuid', versions: '13+', ignorable: true },
        { name: 'partitions', type: '[]int32', versions: '7+' },
      ],
    },
    { name: 'rackId', type: 'string', versions: '11+', default: '', ignorable: true },
  ],
  response: [
    { name: 'throttleTimeMs', type: 'int32', versions: '1+', ignorable: true },
    { name: 'errorCode', type: 'int16', versions: '7+', ignorable: true },
    { name: 'sessionId', type: 'int32', versions: '7+', default: 0 },
    {
      name: 'responses',
      type: '[]struct',
      versions: '0+',
      fields: [
        { name: 'topic', type: 'string', versions: '0-12', ignorable: true },
        { name: 'topicId', type: 'uuid', versions: '13+', ignorable: true },
        {
          name: 'partitions',
          type: '[]struct',
          versions: '0+',
          fields: [
            { name: 'partitionIndex', type: 'int32', versions: '0+' },
            { name: 'errorCode', type: 'int16', versions: '0+' },
            { name: 'highWatermark', type: 'int64', versions: '0+' },
            { name: 'lastStableOffset', type: 'int64', versions: '4+', default: -1, ignorable: true },
            { name: 'logStartOffset', type: 'int64', versions: '5+', default: -1, ignorable: true },
            {
              name: 'divergingEpoch',
              type: 'struct',
              versions: '12+',
              taggedVersions: '12+',
              tag: 0,
              fields: [
                { name: 'epoch', type: 'int32', versions: '12+', default: -1 },
                { name: 'endOffset', type: 'int64', versions: '12+', default: -1 },
              ],
            },
            {
              name: 'currentLeader',
              type: 'struct',
              versions: '12+',
              taggedVersions: '12+',
              tag: 1,
              fields: [
                { name: 'leaderId', type: 'int32', versions: '12+', default: -1 },
                { name: 'leaderEpoch', type: 'int32', versions: '12+', default: -1 },
              ],
            },
            {
              name: 'snapshotId',
              type: 'struct',
              versions: '12+',
              taggedVersions: '12+',
              tag: 2,
              fields: [
                { name: 'endOffset', type: 'int64', versions: '0+', default: -1 },
                { name: 'epoch', type: 'int32', versions: '0+', default: -1 },
              ],
            },
            {
              name: 'abortedTransactions',
              type: '[]struct',
              versions: '4+',
              nullableVersions: '4+',
              ignorable: true,
              fields: [
                { name: 'producerId', type: 'int64', versions: '4+' },
                { name: 'firstOffset', type: 'int64', versions: '4+' },
              ],
            },
            { name: 'preferredReadReplica', type: 'int32', versions: '11+', default: -1 },
            { name: 'records', type: 'records', versions: '0+', nullableVersions: '0+' },
          ],
        },
      ],
    },
    {
      name: 'nodeEndpoints',
      type: '[]struct',
      versions: '16+',
      taggedVersions: '16+',
      tag: 0,
      fields: [
        { name: 'nodeId', type: 'int32', versions: '16+' },
        { name: 'host', type: 'string', versions: '16+' },
        { name: 'port', type: 'int32', versions: '16+' },
        { name: 'rack', type: 'string', versions: '16+', nullableVersions: '16+', default: null },
      ],
    },
  ],
};
