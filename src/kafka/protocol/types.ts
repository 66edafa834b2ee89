/**
 * The shape of our per-API schema tables (apis/*.ts). They follow Kafka's JSON message specs
 * (clients/src/main/resources/common/message/*.json) field for field, with the names in
 * lowerCamelCase, so a table can be checked against the spec by eye:
 *
 *   { name: 'partitionIndex', type: 'int32', versions: '0+' }
 *   { name: 'topics', type: '[]struct', versions: '0+', nullableVersions: '1+', fields: [ ... ] }
 *   { name: 'currentLeader', type: 'struct', versions: '12+', taggedVersions: '12+', tag: 1, fields: [ ... ] }
 *
 * A version range is '3+' (3 and later), '3-5', '3' or 'none'.
 */

/** A scalar field type, as Kafka's message specs name them. */
export type PrimitiveType =
  | 'bool'
  | 'int8'
  | 'int16'
  | 'int32'
  | 'int64'
  | 'uint16'
  | 'uint32'
  | 'float64'
  | 'uuid'
  | 'string'
  | 'bytes'
  | 'records';

/** `[]int32` etc. are arrays of a scalar; `[]struct` and `struct` carry their own `fields`. */
export type FieldType = PrimitiveType | `[]${Exclude<PrimitiveType, 'records'>}` | '[]struct' | 'struct';

/** A field's value when the encoder is given none (and the decoder meets a field absent in a version). */
export type DefaultValue = number | string | boolean | null;

export interface FieldSpec {
  readonly name: string;
  readonly type: FieldType;
  /** The versions in which the field exists. */
  readonly versions: string;
  /** The versions in which the field may be null (strings, bytes, records, arrays, structs). */
  readonly nullableVersions?: string;
  /** The versions in which the field is a tagged field (in the tagged-fields section, with `tag`). */
  readonly taggedVersions?: string;
  readonly tag?: number;
  /** Kafka's default; without one: 0, false, '', empty bytes, [], or null when the field is nullable. */
  readonly default?: DefaultValue;
  /** Kafka's "ignorable": a sender on a version without the field may drop it. Kept for reference. */
  readonly ignorable?: boolean;
  /** The fields of a `struct` or `[]struct`. */
  readonly fields?: readonly FieldSpec[];
}

/** One API's table, as written in apis/<name>.ts. */
export interface ApiTable {
  readonly name: string;
  readonly key: number;
  /** The versions this table covers, e.g. '0-11'. */
  readonly versions: string;
  /** The first version that uses the compact encodings and tagged fields ('9+'), or 'none'. */
  readonly flexibleVersions: string;
  readonly request: readonly FieldSpec[];
  readonly response: readonly FieldSpec[];
}

/** What `API_SPECS` holds per API key. */
export interface ApiSpec {
  readonly name: string;
  readonly key: number;
  readonly minVersion: number;
  readonly maxVersion: number;
  /** The first flexible version, or null when no version of this API is flexible. */
  readonly firstFlexibleVersion: number | null;
  readonly request: readonly FieldSpec[];
  readonly response: readonly FieldSpec[];
}
