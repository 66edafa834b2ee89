/**
 * The schema layer: record serialization and validation. JSON Schema now (written by hand or with
 * TypeBox's `Type`); Avro and Protobuf later. Imports nothing from the layers above it. Embedding
 * code imports it as `kappa/schema` (a config needs only `Type` and `Static`, which `kappa` has).
 *
 * ```ts
 * import { Type, type Static, compileSchema } from 'kappa/schema';
 * const Sale = Type.Object({ orderId: Type.String(), amount: Type.Number({ minimum: 0 }) });
 * type Sale = Static<typeof Sale>;
 * const sales = compileSchema(Sale, { name: 'sales' }); // RecordSchema<Sale>
 * const result = sales.decode(bytes); // { ok: true, value } or { ok: false, issues }
 * ```
 */
export {
  compileSchema,
  invalidRecordError,
  type RecordSchema,
  type CompileSchemaOptions,
  type CheckResult,
  type DecodeResult,
  type FormatCheck,
} from './json-schema.ts';
export { describeIssues, formatPath, issuesFromAjvErrors, type SchemaIssue } from './issues.ts';
export { canonicalJson, schemaFingerprint } from './fingerprint.ts';
export { compileFlatDecoder, type FlatDecoder } from './flat-decoder.ts';
export { Interner } from './flat-shapes.ts';
export { Type, type Static, type TSchema } from '@sinclair/typebox';
