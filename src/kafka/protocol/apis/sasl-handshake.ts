/** SaslHandshake (API key 17): the request and response fields, transcribed from Kafka's SaslHandshakeRequest.json and SaslHandshakeResponse.json. */
import type { ApiTable } from '../types.ts';

export const saslHandshake: ApiTable = {
  name: 'SaslHandshake',
  key: 17,
  versions: '0-1',
  flexibleVersions: 'none',
  request: [{ name: 'mechanism', type: 'string', versions: '0+' }],
  response: [
    { name: 'errorCode', type: 'int16', versions: '0+' },
    { name: 'mechanisms', type: '[]string', versions: '0+' },
  ],
};
