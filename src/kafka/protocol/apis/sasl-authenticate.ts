/**
 * SaslAuthenticate (API key 36): the request and response fields, transcribed from Kafka's SaslAuthenticateRequest.json and
 * SaslAuthenticateResponse.json. Their notes on what each version changed:
 *
 * Request:
 * Version 1 is the same as version 0.
 * Version 2 adds flexible version support
 *
 * Response:
 * Version 1 adds the session lifetime.
 * Version 2 adds flexible version support
 */
import type { ApiTable } from '../types.ts';

export const saslAuthenticate: ApiTable = {
  name: 'SaslAuthenticate',
  key: 36,
  versions: '0-2',
  flexibleVersions: '2+',
  request: [{ name: 'authBytes', type: 'bytes', versions: '0+' }],
  response: [
    { name: 'errorCode', type: 'int16', versions: '0+' },
    { name: 'errorMessage', type: 'string', versions: '0+', nullableVersions: '0+' },
    { name: 'authBytes', type: 'bytes', versions: '0+' },
    { name: 'sessionLifetimeMs', type: 'int64', versions: '1+', default: 0, ignorable: true },
  ],
};
