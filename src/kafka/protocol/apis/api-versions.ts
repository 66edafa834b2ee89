/**
 * ApiVersions (API key 18): the request and response fields, transcribed from Kafka's ApiVersionsRequest.json and
 * ApiVersionsResponse.json. Their notes on what each version changed:
 *
 * Request:
 * Versions 0 through 2 of ApiVersionsRequest are the same.
 *
 * Version 3 is the first flexible version and adds ClientSoftwareName and ClientSoftwareVersion.
 *
 * Version 4 fixes KAFKA-17011, which blocked SupportedFeatures.MinVersion in the response from being 0.
 *
 * Response:
 * Version 1 adds throttle time to the response.
 *
 * Starting in version 2, on quota violation, brokers send out responses before throttling.
 *
 * Version 3 is the first flexible version. Tagged fields are only supported in the body but
 * not in the header. The length of the header must not change in order to guarantee the
 * backward compatibility.
 *
 * Starting from Apache Kafka 2.4 (KIP-511), ApiKeys field is populated with the supported
 * versions of the ApiVersionsRequest when an UNSUPPORTED_VERSION error is returned.
 *
 * Version 4 fixes KAFKA-17011, which blocked SupportedFeatures.MinVersion from being 0.
 */
import type { ApiTable } from '../types.ts';

export const apiVersions: ApiTable = {
  name: 'ApiVersions',
  key: 18,
  versions: '0-4',
  flexibleVersions: '3+',
  request: [
    { name: 'clientSoftwareName', type: 'string', versions: '3+', ignorable: true },
    { name: 'clientSoftwareVersion', type: 'string', versions: '3+', ignorable: true },
  ],
  response: [
    { name: 'errorCode', type: 'int16', versions: '0+' },
    {
      name: 'apiKeys',
      type: '[]struct',
      versions: '0+',
      fields: [
        { name: 'apiKey', type: 'int16', versions: '0+' },
        { name: 'minVersion', type: 'int16', versions: '0+' },
        { name: 'maxVersion', type: 'int16', versions: '0+' },
      ],
    },
    { name: 'throttleTimeMs', type: 'int32', versions: '1+', ignorable: true },
    {
      name: 'supportedFeatures',
      type: '[]struct',
      versions: '3+',
      taggedVersions: '3+',
      tag: 0,
      ignorable: true,
      fields: [
        { name: 'name', type: 'string', versions: '3+' },
        { name: 'minVersion', type: 'int16', versions: '3+' },
        { name: 'maxVersion', type: 'int16', versions: '3+' },
      ],
    },
    {
      name: 'finalizedFeaturesEpoch',
      type: 'int64',
      versions: '3+',
      taggedVersions: '3+',
      tag: 1,
      default: -1,
      ignorable: true,
    },
    {
      name: 'finalizedFeatures',
      type: '[]struct',
      versions: '3+',
      taggedVersions: '3+',
      tag: 2,
      ignorable: true,
      fields: [
        { name: 'name', type: 'string', versions: '3+' },
        { name: 'maxVersionLevel', type: 'int16', versions: '3+' },
        { name: 'minVersionLevel', type: 'int16', versions: '3+' },
      ],
    },
    {
      name: 'zkMigrationReady',
      type: 'bool',
      versions: '3+',
      taggedVersions: '3+',
      tag: 3,
      default: false,
      ignorable: true,
    },
  ],
};
