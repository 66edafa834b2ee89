/**
 * The Kafka wire codec: one declarative table per API (apis/*.ts, transcribed from Kafka's JSON
 * message specs) and one generic encoder/decoder that reads them.
 */
export { API_KEYS, API_SPECS, type ApiName } from './registry.ts';
export { decodeRequest, encodeResponse, encodeRequest, decodeResponse, type Body } from './messages.ts';
export type { RequestHeader } from './header.ts';
export { KafkaProtocolError, type KafkaProtocolErrorKind } from './protocol-error.ts';
export { ERRORS, errorName, type ErrorName } from './error-codes.ts';
export type { ApiSpec, ApiTable, FieldSpec, FieldType, PrimitiveType, DefaultValue } from './types.ts';
