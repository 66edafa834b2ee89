/**
 * Record formats (issue 17): the `FormatCodec` port (types.ts) and one codec per schema type, with
 * their Confluent wire-format encoders and decoders: Avro (avro.ts), Protobuf (protobuf.ts) and
 * JSON Schema (json-schema.ts). Other layers import from here only.
 */
import { avroCodec } from './avro.ts';
import { jsonSchemaCodec } from './json-schema.ts';
import { protobufCodec } from './protobuf.ts';
import type { FormatCodec, SchemaType } from './types.ts';

export * from './types.ts';
export { AvroSchema, avroCodec, avroDecoder, avroRangeDecoder, encodeAvro, parseAvroSchema } from './avro.ts';
export {
  ProtobufSchema,
  encodeProtobuf,
  protobufFrameProblem,
  protobufCodec,
  protobufDecoder,
  type ProtobufDecode,
} from './protobuf.ts';
export {
  ParsedJsonSchema,
  asJsonSchema,
  encodeJson,
  jsonDecoder,
  jsonSchemaCodec,
  parseJsonSchema,
  type JsonRecordDecoder,
  type WriterSchemaLookup,
} from './json-schema.ts';

/** The codec of each schema type, by its Confluent `schemaType` name. */
export const CODECS: Readonly<Record<SchemaType, FormatCodec>> = {
  AVRO: avroCodec,
  PROTOBUF: protobufCodec,
  JSON: jsonSchemaCodec,
};

/** The codec of a schema type. */
export function codecFor(type: SchemaType): FormatCodec {
  return CODECS[type];
}
export { avroTypeScript, protobufTypeScript } from './typescript.ts';
