/**
 * SaslHandshake (API key 17): the request and response fields, transcribed from Kafka's SaslHandshakeRequest.json and
 * SaslHandshakeResponse.json. Their notes on what each version changed:
 *
 * Request:
 * Version 1 supports SASL_AUTHENTICATE.
 * NOTE: Version cannot be easily bumped due to incorrect
 * client negotiation for clients <= 2.4.
 * See https://issues.apache.org/jira/browse/KAFKA-9577
 *
 * Response:
 * Version 1 is the same as version 0.
 * NOTE: Version cannot be easily bumped due to incorrect
 * client negotiation for clients <= 2.4.
 * See https://issues.apache.org/jira/browse/KAFKA-9577
 */
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
