/**
 * Metadata (API key 3): the request and response fields, transcribed from Kafka's MetadataRequest.json and
 * MetadataResponse.json. Their notes on what each version changed:
 *
 * Request:

 *
 * Response:
 * Version 1 adds fields for the rack of each broker, the controller id, and
 * whether or not the topic is internal.
 * 
 * Version 2 adds the cluster ID field.
 * 
 * Version 3 adds the throttle time.
 * 
 * Version 4 is the same as version 3.
 * 
 * Version 5 adds a per-partition offline_replicas field. This field specifies
 * the list of replicas that are offline.
 * 
 * Starting in version 6, on quota violation, brokers send out responses before throttling.
 * 
 * Version 7 adds the leader epoch to the partition metadata.
 * 
 * Starting in version 8, brokers can send authorized operations for topic and cluster.
 * 
 * Version 9 is the first flexible version.
 * 
 * Version 10 adds topicId.
 * 
 * Version 11 deprecates ClusterAuthorizedOperations. This is now exposed
 * by the DescribeCluster API (KIP-700).
 * Version 12 supports topicId.
 */
import type { ApiTable } from '../types.ts';

export const metadata: ApiTable = {
  name: 'Metadata',
  key: 3,
  versions: '0-12',
  flexibleVersions: '9+',
  request: [
    {
      name: 'topics',
      type: '[]struct',
      versions: '0+',
      nullableVersions: '1+',
      fields: [
        { name: 'topicId', type: 'uuid', versions: '10+', ignorable: true },
        { name: 'name', type: 'string', versions: '0+', nullableVersions: '10+' },
      ],
    },
    { name: 'allowAutoTopicCreation', type: 'bool', versions: '4+', default: true },
    { name: 'includeClusterAuthorizedOperations', type: 'bool', versions: '8-10' },
    { name: 'includeTopicAuthorizedOperations', type: 'bool', versions: '8+' },
  ],
  response: [
    { name: 'throttleTimeMs', type: 'int32', versions: '3+', ignorable: true },
    {
      name: 'brokers',
      type: '[]struct',
      versions: '0+',
      fields: [
        { name: 'nodeId', type: 'int32', versions: '0+' },
        { name: 'host', type: 'string', versions: '0+' },
        { name: 'port', type: 'int32', versions: '0+' },
        { name: 'rack', type: 'string', versions: '1+', nullableVersions: '1+', default: null, ignorable: true },
      ],
    },
    { name: 'clusterId', type: 'string', versions: '2+', nullableVersions: '2+', default: null, ignorable: true },
    { name: 'controllerId', type: 'int32', versions: '1+', default: -1, ignorable: true },
    {
      name: 'topics',
      type: '[]struct',
      versions: '0+',
      fields: [
        { name: 'errorCode', type: 'int16', versions: '0+' },
        { name: 'name', type: 'string', versions: '0+', nullableVersions: '12+' },
        { name: 'topicId', type: 'uuid', versions: '10+', ignorable: true },
        { name: 'isInternal', type: 'bool', versions: '1+', default: false, ignorable: true },
        {
          name: 'partitions',
          type: '[]struct',
          versions: '0+',
          fields: [
            { name: 'errorCode', type: 'int16', versions: '0+' },
            { name: 'partitionIndex', type: 'int32', versions: '0+' },
            { name: 'leaderId', type: 'int32', versions: '0+' },
            { name: 'leaderEpoch', type: 'int32', versions: '7+', default: -1, ignorable: true },
            { name: 'replicaNodes', type: '[]int32', versions: '0+' },
            { name: 'isrNodes', type: '[]int32', versions: '0+' },
            { name: 'offlineReplicas', type: '[]int32', versions: '5+', ignorable: true },
          ],
        },
        { name: 'topicAuthorizedOperations', type: 'int32', versions: '8+', default: -2147483648 },
      ],
    },
    { name: 'clusterAuthorizedOperations', type: 'int32', versions: '8-10', default: -2147483648 },
  ],
};
