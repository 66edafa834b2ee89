/**
 * Produce (API key 0): the request and response fields, transcribed from Kafka's ProduceRequest.json and
 * ProduceResponse.json. Their notes on what each version changed:
 *
 * Request:
 * Version 1 and 2 are the same as version 0.
 *
 * Version 3 adds the transactional ID, which is used for authorization when attempting to write
 * transactional data.  Version 3 also adds support for Kafka Message Format v2.
 *
 * Version 4 is the same as version 3, but the requester must be prepared to handle a
 * KAFKA_STORAGE_ERROR.
 *
 * Version 5 and 6 are the same as version 3.
 *
 * Starting in version 7, records can be produced using ZStandard compression.  See KIP-110.
 *
 * Starting in Version 8, response has RecordErrors and ErrorMessage. See KIP-467.
 *
 * Version 9 enables flexible versions.
 *
 * Version 10 is the same as version 9 (KIP-951).
 *
 * Version 11 adds support for new error code TRANSACTION_ABORTABLE (KIP-890).
 *
 * Response:
 * Version 1 added the throttle time.
 *
 * Version 2 added the log append time.
 *
 * Version 3 is the same as version 2.
 *
 * Version 4 added KAFKA_STORAGE_ERROR as a possible error code.
 *
 * Version 5 added LogStartOffset to filter out spurious
 * OutOfOrderSequenceExceptions on the client.
 *
 * Version 8 added RecordErrors and ErrorMessage to include information about
 * records that cause the whole batch to be dropped.  See KIP-467 for details.
 *
 * Version 9 enables flexible versions.
 *
 * Version 10 adds 'CurrentLeader' and 'NodeEndpoints' as tagged fields (KIP-951)
 *
 * Version 11 adds support for new error code TRANSACTION_ABORTABLE (KIP-890).
 */
import type { ApiTable } from '../types.ts';

export const produce: ApiTable = {
  name: 'Produce',
  key: 0,
  versions: '0-11',
  flexibleVersions: '9+',
  request: [
    { name: 'transactionalId', type: 'string', versions: '3+', nullableVersions: '3+', default: null },
    { name: 'acks', type: 'int16', versions: '0+' },
    { name: 'timeoutMs', type: 'int32', versions: '0+' },
    {
      name: 'topicData',
      type: '[]struct',
      versions: '0+',
      fields: [
        { name: 'name', type: 'string', versions: '0+' },
        {
          name: 'partitionData',
          type: '[]struct',
          versions: '0+',
          fields: [
            { name: 'index', type: 'int32', versions: '0+' },
            { name: 'records', type: 'records', versions: '0+', nullableVersions: '0+' },
          ],
        },
      ],
    },
  ],
  response: [
    {
      name: 'responses',
      type: '[]struct',
      versions: '0+',
      fields: [
        { name: 'name', type: 'string', versions: '0+' },
        {
          name: 'partitionResponses',
          type: '[]struct',
          versions: '0+',
          fields: [
            { name: 'index', type: 'int32', versions: '0+' },
            { name: 'errorCode', type: 'int16', versions: '0+' },
            { name: 'baseOffset', type: 'int64', versions: '0+' },
            { name: 'logAppendTimeMs', type: 'int64', versions: '2+', default: -1, ignorable: true },
            { name: 'logStartOffset', type: 'int64', versions: '5+', default: -1, ignorable: true },
            {
              name: 'recordErrors',
              type: '[]struct',
              versions: '8+',
              ignorable: true,
              fields: [
                { name: 'batchIndex', type: 'int32', versions: '8+' },
                {
                  name: 'batchIndexErrorMessage',
                  type: 'string',
                  versions: '8+',
                  nullableVersions: '8+',
                  default: null,
                },
              ],
            },
            {
              name: 'errorMessage',
              type: 'string',
              versions: '8+',
              nullableVersions: '8+',
              default: null,
              ignorable: true,
            },
            {
              name: 'currentLeader',
              type: 'struct',
              versions: '10+',
              taggedVersions: '10+',
              tag: 0,
              fields: [
                { name: 'leaderId', type: 'int32', versions: '10+', default: -1 },
                { name: 'leaderEpoch', type: 'int32', versions: '10+', default: -1 },
              ],
            },
          ],
        },
      ],
    },
    { name: 'throttleTimeMs', type: 'int32', versions: '1+', default: 0, ignorable: true },
    {
      name: 'nodeEndpoints',
      type: '[]struct',
      versions: '10+',
      taggedVersions: '10+',
      tag: 0,
      fields: [
        { name: 'nodeId', type: 'int32', versions: '10+' },
        { name: 'host', type: 'string', versions: '10+' },
        { name: 'port', type: 'int32', versions: '10+' },
        { name: 'rack', type: 'string', versions: '10+', nullableVersions: '10+', default: null },
      ],
    },
  ],
};
